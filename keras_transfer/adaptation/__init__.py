"""Domain adaptation: `adapt` (the robust default recipe), DANN, CDAN, DeepCORAL,
MMD, MCC, entropy/BNM, self-training and AdaBN on one training step, plus schedules,
importance weighting, unsupervised model selection and evaluation."""

from keras_transfer.adaptation.batchnorm import adapt_batchnorm, has_batchnorm
from keras_transfer.adaptation.candidates import (
    APPEARANCE_AUGMENTATION,
    AUTO_AUGMENTATION,
    DEFAULT_SOURCE_AUGMENTATION,
    SOURCE_AUGMENTATIONS,
    source_augmentation_for,
)
from keras_transfer.adaptation.combined import CombinedAlignment
from keras_transfer.adaptation.encoders import make_encoder
from keras_transfer.adaptation.ensemble import ENSEMBLE, ensemble_model
from keras_transfer.adaptation.evaluation import (
    domain_classification_reports,
    per_domain_accuracy,
)
from keras_transfer.adaptation.inputs import split_source
from keras_transfer.adaptation.label_shift import (
    LABEL_SHIFT_ESTIMATORS,
    PriorCorrection,
    estimate_label_shift,
    prior_corrected,
)
from keras_transfer.adaptation.losses import coral_loss, mmd_loss
from keras_transfer.adaptation.methods import (
    AlignmentMethod,
    ConditionalDomainAdversarial,
    CORALAlignment,
    DomainAdversarial,
    MMDAlignment,
    get_alignment_method,
    list_alignment_methods,
    register_alignment_method,
)
from keras_transfer.adaptation.model import (
    DANN,
    DomainAdaptationModel,
    default_strong_augmentation,
    make_bottleneck,
)
from keras_transfer.adaptation.pipeline import (
    AUTO_CANDIDATES,
    LOW_AGREEMENT,
    AdaptResult,
    adapt,
    choose,
)
from keras_transfer.adaptation.recipe import AdaptationController
from keras_transfer.adaptation.reverse import (
    reverse_validation,
    reverse_validation_scores,
)
from keras_transfer.adaptation.schedules import (
    DANNLearningRateSchedule,
    DomainLambdaScheduler,
    dann_lambda,
)
from keras_transfer.adaptation.scores import (
    REVERSE_SELECTORS,
    RV_VETO_SHARE,
    SELECTORS,
    ensemble_agreement,
    selection_scores,
    soft_neighborhood_density,
)
from keras_transfer.adaptation.selection import (
    DEVCallback,
    deep_embedded_validation,
    dev_risk,
)
from keras_transfer.adaptation.soup import (
    DEFAULT_ON_LOW_AGREEMENT,
    LOW_AGREEMENT_ACTIONS,
    SOUP,
    soup_model,
)
from keras_transfer.adaptation.target_methods import (
    BatchNuclearNorm,
    EntropyMinimization,
    MinimumClassConfusion,
    SelfTraining,
)
from keras_transfer.adaptation.weighted import (
    ClassWeightEstimator,
    ImportanceWeightedConditionalDomainAdversarial,
    ImportanceWeightedDomainAdversarial,
)
from keras_transfer.adaptation.weighting import importance_weights

__all__ = [
    "CombinedAlignment",
    "APPEARANCE_AUGMENTATION",
    "AUTO_AUGMENTATION",
    "AUTO_CANDIDATES",
    "LOW_AGREEMENT",
    "DEFAULT_SOURCE_AUGMENTATION",
    "SOURCE_AUGMENTATIONS",
    "AdaptResult",
    "AdaptationController",
    "BatchNuclearNorm",
    "EntropyMinimization",
    "MinimumClassConfusion",
    "SELECTORS",
    "REVERSE_SELECTORS",
    "RV_VETO_SHARE",
    "SelfTraining",
    "reverse_validation",
    "reverse_validation_scores",
    "adapt",
    "adapt_batchnorm",
    "choose",
    "ensemble_agreement",
    "ENSEMBLE",
    "ensemble_model",
    "SOUP",
    "soup_model",
    "DEFAULT_ON_LOW_AGREEMENT",
    "LOW_AGREEMENT_ACTIONS",
    "default_strong_augmentation",
    "has_batchnorm",
    "make_bottleneck",
    "selection_scores",
    "soft_neighborhood_density",
    "source_augmentation_for",
    "split_source",
    "DANN",
    "DANNLearningRateSchedule",
    "DEVCallback",
    "DomainLambdaScheduler",
    "dann_lambda",
    "deep_embedded_validation",
    "dev_risk",
    "domain_classification_reports",
    "importance_weights",
    "LABEL_SHIFT_ESTIMATORS",
    "PriorCorrection",
    "estimate_label_shift",
    "prior_corrected",
    "ClassWeightEstimator",
    "ImportanceWeightedConditionalDomainAdversarial",
    "ImportanceWeightedDomainAdversarial",
    "per_domain_accuracy",
    "AlignmentMethod",
    "CORALAlignment",
    "ConditionalDomainAdversarial",
    "DomainAdaptationModel",
    "DomainAdversarial",
    "MMDAlignment",
    "coral_loss",
    "get_alignment_method",
    "list_alignment_methods",
    "make_encoder",
    "mmd_loss",
    "register_alignment_method",
]
