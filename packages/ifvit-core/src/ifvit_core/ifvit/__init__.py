"""IFViT-specific modules: Module 1 alignment glue, Module 2 branches, the verification graph."""

from ifvit_core.ifvit.registration import Alignment, align_pair, module2_inputs
from ifvit_core.ifvit.representation import Branch, Matcher, init_from_module1
from ifvit_core.ifvit.verify import verify_pairs

__all__ = ["Alignment", "Branch", "Matcher", "align_pair", "init_from_module1", "module2_inputs",
           "verify_pairs"]
