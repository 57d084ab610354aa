"""2D poses: keypoint formats and files, rendering to pose maps, normalisation, retargeting."""
