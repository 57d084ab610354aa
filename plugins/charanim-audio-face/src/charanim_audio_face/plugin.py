"""Entry point of the charanim-audio-face plugin; imports the conditioner only when asked."""

import charanim


@charanim.hookimpl
def charanim_register_conditioners(register):
    from charanim_audio_face.conditioner import AudioFaceConditioner

    register(AudioFaceConditioner)
