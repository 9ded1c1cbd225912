"""File formats: weights files in .npz, safetensors or a TransformerLens state dict, read and written without losing data.

docs/FORMAT.md is the contract; docs/interop.md the TransformerLens side. A format learns a file's
shape from ``georecall.theory`` alone; every reader refuses a bad file with one InputError naming it.
"""

from georecall.formats.containers import CONTAINERS, LoadedModel, load_model, save_model, save_model_as

__all__ = ["CONTAINERS", "LoadedModel", "load_model", "save_model", "save_model_as"]
