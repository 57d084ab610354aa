"""Entry point of the charanim-rgb plugin; imports the conditioner only when asked."""

import charanim


@charanim.hookimpl
def charanim_register_conditioners(register):
    from charanim_rgb.conditioner import RGBConditioner

    register(RGBConditioner)
