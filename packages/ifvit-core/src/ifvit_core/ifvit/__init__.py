"""IFViT-specific modules: Module 1 alignment glue, Module 2 branches, branch ground truth, the
shared forward path (`register_pair`, `verify_pairs`), per-image templates (`embed_images`)."""

from ifvit_core.ifvit.registration import (
                                           Alignment,
                                           Module2Inputs,
                                           align_pair,
                                           global_shape,
                                           module2_inputs,
)
from ifvit_core.ifvit.representation import Branch, Matcher, init_from_module1
from ifvit_core.ifvit.targets import branch_ground_truth, branch_points, module2_targets
from ifvit_core.ifvit.template import TemplateInputs, embed_images, template_inputs
from ifvit_core.ifvit.verify import register_pair, run_matcher, verify_pairs

__all__ = ["Alignment", "Branch", "Matcher", "Module2Inputs", "TemplateInputs", "align_pair",
           "branch_ground_truth", "branch_points", "embed_images", "global_shape",
           "init_from_module1", "module2_inputs", "module2_targets", "register_pair", "run_matcher",
           "template_inputs", "verify_pairs"]
