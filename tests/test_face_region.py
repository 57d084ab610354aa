"""The face box that training.face_weight weighs: from the nose and eyes of any format
that names them, nothing for those that do not."""

import numpy as np

from charanim.pose.face_region import face_masks
from charanim.pose.keypoints import KeypointSequence, KeypointsHeader


def _sequence(body_format: str, points: np.ndarray) -> KeypointSequence:
    return KeypointSequence.from_body_array(KeypointsHeader(32, 32, 8.0, body_format=body_format), points)


def test_the_face_box_is_centred_on_the_nose_and_sized_by_the_eyes():
    body = np.zeros((2, 17, 3), np.float32)
    body[0, 0] = [16, 12, 1]  # nose
    body[0, 1], body[0, 2] = [18, 10, 1], [14, 10, 1]  # eyes 4 px apart -> box 16 x 16 at reach 1.5
    body[0, 11] = [16, 25, 1]  # a hip, so the second frame has someone without a face
    body[1, 11] = [16, 25, 1]
    masks = face_masks(_sequence("coco17", body), 32, 32)
    assert masks.shape == (2, 32, 32)
    rows, columns = np.nonzero(masks[0])
    assert (rows.min(), rows.max(), columns.min(), columns.max()) == (6, 17, 10, 21)
    assert not masks[1].any()  # nose and eyes not seen: no face


def test_formats_without_a_face_give_none():
    body = np.full((1, 6, 3), 10.0, np.float32)
    assert not face_masks(_sequence("blob6", body), 32, 32).any()


def test_training_batches_carry_the_face_on_the_latent_grid_inside_the_character(tmp_path):
    import torch

    from charanim.conditioning import OutputSpec
    from charanim.config import resolve
    from charanim.plugins import get_plugins
    from charanim.synthetic.samples import WorldConfig
    from charanim.synthetic.world import WorldJob, run_world
    from charanim.training.batch import BatchBuilder
    from charanim.training.build import build_backbone
    from charanim.training.data import ManifestData, sample_rng
    from charanim.training.recipe import Recipe

    config = WorldConfig(size=(32, 32), frames=6, body_plans=("humanoid",), cross_plan=0.0, motions=("talk",))
    run_world(WorldJob(tmp_path / "w", count=4, seed=3, config=config, test_fraction=0.0))
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(
        f"model: {{width: 32, height: 32, frames: 4}}\nconditioners: [pose]\n"
        f"data: {{manifest: {tmp_path / 'w' / 'manifest.jsonl'}}}\n"
    )
    recipe = resolve(Recipe, recipe_file)
    backbone = build_backbone(recipe, torch.device("cpu"))
    pose = get_plugins().conditioners.get("pose")()
    builder = BatchBuilder(backbone, [pose], OutputSpec(32, 32, 4, 8.0), "target", face_masks=True)
    data = ManifestData(recipe.data, 4)
    samples = [data.sample(i, sample_rng(0, 0, i)) for i in range(2)]
    batch = builder.build(samples, [sample_rng(0, 1, i) for i in range(2)], augment=False)
    builder.face_masks = False  # a face weight of 1 does not read them: none are made
    assert builder.build(samples, [sample_rng(0, 1, i) for i in range(2)], augment=False).face_mask is None
    assert batch.face_mask.shape == batch.target_mask.shape
    assert 0 < batch.face_mask.mean() < batch.target_mask.mean()
    # the face box reaches a little past the head's outline, but lies mostly on the character
    assert (batch.face_mask * batch.target_mask).sum() > 0.6 * batch.face_mask.sum()
