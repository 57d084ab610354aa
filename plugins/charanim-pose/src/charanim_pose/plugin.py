"""Entry point of the charanim-pose plugin; imports the conditioner only when asked."""

import charanim


@charanim.hookimpl
def charanim_register_conditioners(register):
    from charanim_pose.conditioner import PoseConditioner

    register(PoseConditioner)
