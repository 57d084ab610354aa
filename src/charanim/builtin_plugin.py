"""charanim's own registrations, made through the same hooks a third-party plugin uses."""

from charanim.hookspecs import hookimpl


@hookimpl
def charanim_register_backbones(register):
    from charanim.models.tiny import TinyFamily
    from charanim.models.wan_animate import WanAnimateFamily
    from charanim.models.wan_animate2 import WanAnimate2Family
    from charanim.models.wan_i2v import WanI2VFamily

    register(TinyFamily)
    register(WanI2VFamily)
    register(WanAnimateFamily)
    register(WanAnimate2Family)


@hookimpl
def charanim_register_pose_estimators(register):
    from charanim.pose.mediapipe_estimator import MediaPipeEstimator

    register(MediaPipeEstimator)


@hookimpl
def charanim_register_captioners(register):
    from charanim.captioning.heuristic import HeuristicCaptioner
    from charanim.captioning.vlm import VLMCaptioner

    register(HeuristicCaptioner)
    register(VLMCaptioner)


@hookimpl
def charanim_register_metrics(register):
    from charanim.bench.metrics import BUILTIN_METRICS

    for metric in BUILTIN_METRICS:
        register(metric)
