"""The one registry line a fifth model adds, run at the start of every Python process whose path
holds this folder (the test's pytest and the fresh processes some tests start)."""

from anomzoo.models import MODELS
from model import Throwaway

MODELS["throwaway"] = Throwaway
