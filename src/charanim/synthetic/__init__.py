"""A procedural world of articulated 2D characters with ground truth.

The same motion rendered on two different characters gives a true cross-identity
pair (driving video of A, reference image of B, target video of B doing A's motion),
with keypoints, masks and captions. It trains the embedded model on a CPU and gives
``bench`` cases whose every output can be compared with the truth.
"""
