"""Target-oriented text guidance (DreamActor-M2): describe the driving motion (T_m) and
the reference's appearance (T_a), and fuse them into a prompt for the target (T_fusion)."""
