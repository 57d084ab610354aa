"""Body plans: how semantic motion channels become joint positions, and joints become parts.

Each plan sets its proportions (random per character), computes its points in body
units (root at the origin, y up, feet on the ground), names its keypoints in one of
the pose formats (humanoids use COCO-17, so every pose tool applies), and lists the
parts the renderer draws. ``facing``/``heading``/``lean``/``x``/``y`` are applied
afterwards, the same way for every plan (``scene.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from charanim.pose.formats import AP10K, BIRD, BLOB6, COCO17, BodyFormat
from charanim.raster import Fill, Part
from charanim.synthetic.appearance import Appearance

Points = dict[str, np.ndarray]


def _v(x: float, y: float) -> np.ndarray:
    return np.array([x, y], np.float64)


def _rot(vector: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([c * vector[0] - s * vector[1], s * vector[0] + c * vector[1]])


def _darker(fill: Fill, factor: float = 0.7) -> Fill:
    scale = lambda c: None if c is None else tuple(v * factor for v in c)  # noqa: E731
    return Fill(scale(fill.colour), scale(fill.secondary), fill.pattern, fill.frequency, fill.shade)


class BodyPlan(ABC):
    name: str
    noun: str
    format: BodyFormat
    view: str  # "front" or "side"

    @abstractmethod
    def proportions(self, rng: np.random.Generator) -> dict[str, float]: ...

    @abstractmethod
    def points(self, props: dict[str, float], ch: dict[str, float]) -> Points:
        """Named points in body units; must include every keypoint name of ``format``."""

    @abstractmethod
    def parts(self, props, look: Appearance, p: Points, scale: float, ch: dict[str, float]) -> list[Part]:
        """Parts to draw, back to front, from points already in pixels."""

    def hidden(self, ch: dict[str, float]) -> set[str]:
        """Keypoints not visible in this pose (e.g. the face of a character turned away)."""
        return set()

    def keypoints(self, props: dict[str, float], p: Points, ch: dict[str, float]) -> np.ndarray:
        """``[K, 3]`` x, y (body units) and visibility 0/1, in the plan's keypoint order."""
        hidden = self.hidden(ch)
        return np.array(
            [[*p[name], 0.0 if name in hidden else 1.0] for name in self.format.keypoints], np.float32
        )


def _face(
    p: Points, centre: str, radius: float, look: Appearance, ch, facing: float, side_view=False
) -> list[Part]:
    """Eyes (white, pupil, blinking) and a mouth that opens with ``ch['mouth']``."""
    if facing < 0.15 and not side_view:
        return []
    parts = []
    eye_r = radius * look.eye_size * 0.55
    open_ratio = max(0.12, 1.0 - ch["blink"])
    eyes = ["eye"] if side_view else ["left_eye", "right_eye"]
    for name in eyes:
        if name not in p:
            continue
        c = p[name]
        parts.append(
            Part(
                "ellipse",
                c[None],
                (eye_r, eye_r * open_ratio),
                Fill((0.97, 0.97, 0.97), shade=0.0),
                outline=False,
            )
        )
        pupil = c + _v(eye_r * 0.25 * (1 if side_view else facing - 0.6), 0)
        parts.append(
            Part(
                "ellipse",
                pupil[None],
                (eye_r * 0.55, eye_r * 0.55 * open_ratio),
                Fill(look.pupil, shade=0.0),
                outline=False,
            )
        )
    if "mouth" in p:
        width = radius * (0.28 if side_view else 0.38)
        height = radius * (0.04 + 0.3 * float(np.clip(ch["mouth"], 0, 1)))
        parts.append(
            Part(
                "ellipse",
                p["mouth"][None],
                (width, height),
                Fill((0.35, 0.05, 0.08), shade=0.0),
                outline=False,
            )
        )
    return parts


def _accessory(
    look: Appearance, top: np.ndarray, radius: float, tilt: float, neck: tuple[np.ndarray, np.ndarray] | None
) -> list[Part]:
    fill = Fill(look.accent, shade=0.1)
    up = _rot(_v(0, -1), -tilt)  # pixels: y grows downwards
    side = _rot(_v(1, 0), -tilt)
    if look.accessory == "hat":
        base = top + up * radius * 0.1
        tip = top + up * radius * 1.5
        brim = [base - side * radius * 1.1, base + side * radius * 1.1]
        return [Part("polygon", np.array([brim[0], brim[1], tip]), (), fill)]
    if look.accessory == "cap":
        return [
            Part(
                "ellipse", (top + up * radius * 0.1)[None], (radius * 0.95, radius * 0.45), fill, angle=-tilt
            )
        ]
    if look.accessory == "scarf" and neck is not None:
        return [Part("capsule", np.array(neck), (radius * 0.35, radius * 0.35), fill)]
    if look.accessory == "bow" and neck is not None:
        centre = neck[0]
        return [
            Part(
                "polygon",
                np.array(
                    [
                        centre,
                        centre - side * radius * 0.6 + up * radius * 0.3,
                        centre - side * radius * 0.6 - up * radius * 0.3,
                    ]
                ),
                (),
                fill,
            ),
            Part(
                "polygon",
                np.array(
                    [
                        centre,
                        centre + side * radius * 0.6 + up * radius * 0.3,
                        centre + side * radius * 0.6 - up * radius * 0.3,
                    ]
                ),
                (),
                fill,
            ),
        ]
    return []


class Humanoid(BodyPlan):
    name, noun, format, view = "humanoid", "humanoid", COCO17, "front"

    def proportions(self, rng):
        props = {
            "head": rng.uniform(0.07, 0.13), "neck": rng.uniform(0.02, 0.06), "torso": rng.uniform(0.24, 0.34),
            "shoulder": rng.uniform(0.08, 0.15), "hip": rng.uniform(0.045, 0.085), "upper_arm": rng.uniform(0.12, 0.18),
            "forearm": rng.uniform(0.11, 0.17), "thigh": rng.uniform(0.17, 0.26), "shin": rng.uniform(0.16, 0.25),
            "arm_r": rng.uniform(0.022, 0.045), "leg_r": rng.uniform(0.028, 0.06), "belly": rng.uniform(0.0, 0.05),
        }  # fmt: skip
        total = (
            2 * props["head"]
            + props["neck"]
            + props["torso"]
            + props["thigh"]
            + props["shin"]
            + props["leg_r"]
        )
        return {k: v / total for k, v in props.items()}

    def _limb(self, side: float, raise_: float, swing: float) -> np.ndarray:
        return _v(side * np.sin(raise_) * np.cos(swing), -np.cos(raise_) * np.cos(swing))

    def points(self, props, ch):
        p: Points = {}
        legs = {}
        for name, side in (("left", 1.0), ("right", -1.0)):
            s = name[0]
            hip = _v(side * props["hip"], 0)
            knee = hip + props["thigh"] * self._limb(side, ch[f"leg_{s}_spread"], ch[f"leg_{s}_swing"])
            ankle = knee + props["shin"] * self._limb(
                side, ch[f"leg_{s}_spread"], ch[f"leg_{s}_swing"] - ch[f"knee_{s}"]
            )
            legs[name] = (hip, knee, ankle)
        # keep the lower foot on the ground: the root rises or sinks with the legs
        ground = props["thigh"] + props["shin"]
        lift = ground + min(legs["left"][2][1], legs["right"][2][1])
        offset = _v(0, -lift)
        for name, (hip, knee, ankle) in legs.items():
            p[f"{name}_hip"], p[f"{name}_knee"], p[f"{name}_ankle"] = (
                hip + offset,
                knee + offset,
                ankle + offset,
            )
        p["pelvis"] = offset
        neck_base = offset + _v(0, props["torso"])
        p["neck_base"] = neck_base
        head = neck_base + _rot(_v(0, props["neck"] + props["head"]), ch["head"])
        p["head"] = head
        r = props["head"]
        for name, local in (
            ("nose", (0, -0.12)), ("left_eye", (0.38, 0.12)), ("right_eye", (-0.38, 0.12)),
            ("left_ear", (0.95, 0.05)), ("right_ear", (-0.95, 0.05)), ("mouth", (0, -0.5)), ("head_top", (0, 1.0)),
        ):  # fmt: skip
            p[name] = head + _rot(_v(local[0] * r, local[1] * r), ch["head"])
        for name, side in (("left", 1.0), ("right", -1.0)):
            s = name[0]
            shoulder = neck_base + _v(side * props["shoulder"], -0.02)
            raise_, swing, bend = ch[f"arm_{s}_raise"], ch[f"arm_{s}_swing"], ch[f"elbow_{s}"]
            elbow = shoulder + props["upper_arm"] * self._limb(side, raise_, swing)
            wrist = elbow + props["forearm"] * self._limb(side, raise_ + 0.6 * bend, swing + 0.8 * bend)
            p[f"{name}_shoulder"], p[f"{name}_elbow"], p[f"{name}_wrist"] = shoulder, elbow, wrist
        return p

    def hidden(self, ch):
        return {"nose", "left_eye", "right_eye"} if ch["facing"] < 0.15 else set()

    def parts(self, props, look, p, scale, ch):
        r = lambda key, k=1.0: props[key] * scale * k  # noqa: E731
        parts = []
        for name in ("left", "right"):
            parts.append(
                Part(
                    "capsule",
                    np.array([p[f"{name}_hip"], p[f"{name}_knee"]]),
                    (r("leg_r"), r("leg_r", 0.85)),
                    look.limbs,
                )
            )
            parts.append(
                Part(
                    "capsule",
                    np.array([p[f"{name}_knee"], p[f"{name}_ankle"]]),
                    (r("leg_r", 0.85), r("leg_r", 0.7)),
                    look.limbs,
                )
            )
            foot = p[f"{name}_ankle"] + _v((1 if name == "left" else -1) * r("leg_r", 0.6), r("leg_r", 0.4))
            parts.append(
                Part("ellipse", foot[None], (r("leg_r", 1.3), r("leg_r", 0.7)), _darker(look.limbs, 0.6))
            )
        torso_low, torso_high = r("hip", 1.0) + r("leg_r", 0.6) + r("belly"), r("shoulder", 0.85)
        parts.append(
            Part("capsule", np.array([p["pelvis"], p["neck_base"]]), (torso_low, torso_high), look.body)
        )
        parts.append(
            Part(
                "capsule",
                np.array([p["neck_base"], p["head"]]),
                (r("arm_r", 0.9), r("arm_r", 0.9)),
                look.head,
            )
        )
        for name in ("left", "right"):
            parts.append(
                Part(
                    "capsule",
                    np.array([p[f"{name}_shoulder"], p[f"{name}_elbow"]]),
                    (r("arm_r"), r("arm_r", 0.85)),
                    look.limbs,
                )
            )
            parts.append(
                Part(
                    "capsule",
                    np.array([p[f"{name}_elbow"], p[f"{name}_wrist"]]),
                    (r("arm_r", 0.85), r("arm_r", 0.75)),
                    look.limbs,
                )
            )
            parts.append(
                Part("ellipse", p[f"{name}_wrist"][None], (r("arm_r", 1.15), r("arm_r", 1.15)), look.head)
            )
        parts.append(Part("ellipse", p["head"][None], (r("head"), r("head", 1.05)), look.head))
        parts += _face(p, "head", r("head"), look, ch, ch["facing"])
        top = p["head"] + (p["head_top"] - p["head"]) * 0.8
        parts += _accessory(
            look,
            top,
            r("head"),
            ch["head"],
            (p["neck_base"], p["neck_base"] + (p["head"] - p["neck_base"]) * 0.2),
        )
        return parts


class Quadruped(BodyPlan):
    name, noun, format, view = "quadruped", "four-legged animal", AP10K, "side"

    def proportions(self, rng):
        props = {
            "body": rng.uniform(0.38, 0.6), "body_r": rng.uniform(0.09, 0.16), "neck": rng.uniform(0.1, 0.2),
            "head": rng.uniform(0.07, 0.12), "snout": rng.uniform(0.04, 0.11), "upper": rng.uniform(0.12, 0.2),
            "lower": rng.uniform(0.11, 0.19), "leg_r": rng.uniform(0.025, 0.05), "tail": rng.uniform(0.12, 0.35),
            "tail_r": rng.uniform(0.015, 0.04), "ear": rng.uniform(0.03, 0.08), "neck_angle": rng.uniform(0.6, 1.1),
        }  # fmt: skip
        total = props["body_r"] + props["upper"] + props["lower"] + props["neck"] * 0.8 + props["head"]
        return {k: (v / total if k != "neck_angle" else v) for k, v in props.items()}

    def points(self, props, ch):
        p: Points = {}
        half = props["body"] / 2
        shoulder, hip = _v(half, 0), _v(-half, 0)
        legs = {}
        for name, base, swing_key, bend_key, lift_key, sign in (
            ("left_front", shoulder, "arm_l_swing", "elbow_l", "arm_l_raise", -1),
            ("right_front", shoulder + _v(-0.03, 0), "arm_r_swing", "elbow_r", "arm_r_raise", -1),
            ("left_back", hip, "leg_l_swing", "knee_l", "leg_l_spread", 1),
            ("right_back", hip + _v(0.03, 0), "leg_r_swing", "knee_r", "leg_r_spread", 1),
        ):
            lift = max(0.0, ch[lift_key] - (0.18 if "front" in name else 0.06))
            angle = ch[swing_key] + 0.6 * lift
            joint = base + props["upper"] * _rot(_v(0, -1), angle)
            foot = joint + props["lower"] * _rot(_v(0, -1), angle + sign * (0.8 * ch[bend_key] + 0.5 * lift))
            legs[name] = (base, joint, foot)
        ground = props["upper"] + props["lower"]
        offset = _v(0, -(ground + min(leg[2][1] for leg in legs.values())))
        for name, (base, joint, foot) in legs.items():
            side, end = name.split("_")
            paw = f"{side}_{end}_paw"
            p[f"{name}_base"], p[f"{name}_joint"], p[paw] = base + offset, joint + offset, foot + offset
        p["left_shoulder"], p["right_shoulder"] = p["left_front_base"], p["right_front_base"]
        p["left_elbow"], p["right_elbow"] = p["left_front_joint"], p["right_front_joint"]
        p["left_hip"], p["right_hip"] = p["left_back_base"], p["right_back_base"]
        p["left_knee"], p["right_knee"] = p["left_back_joint"], p["right_back_joint"]
        p["body"] = offset
        p["neck"] = offset + shoulder + _v(0, props["body_r"] * 0.3)
        neck_angle = props["neck_angle"] + ch["head"] - 0.4 * ch["mouth"] * 0
        head = p["neck"] + props["neck"] * _v(np.cos(neck_angle), np.sin(neck_angle))
        p["head"] = head
        hr = props["head"]
        p["nose"] = head + _rot(_v(hr + props["snout"], -0.25 * hr), ch["head"])
        p["left_eye"] = head + _rot(_v(0.35 * hr, 0.3 * hr), ch["head"])
        p["right_eye"] = head + _rot(_v(0.5 * hr, 0.32 * hr), ch["head"])
        p["eye"] = p["left_eye"]
        p["mouth"] = head + _rot(_v(0.6 * hr + 0.5 * props["snout"], -0.5 * hr), ch["head"])
        p["ear"] = head + _rot(_v(-0.2 * hr, hr + props["ear"]), ch["head"])
        p["root_of_tail"] = offset + hip + _v(-0.02, props["body_r"] * 0.4)
        tail_angle = 2.3 + 0.6 * ch["tail"]
        p["tail_mid"] = p["root_of_tail"] + props["tail"] * 0.5 * _v(np.cos(tail_angle), np.sin(tail_angle))
        p["tail_tip"] = p["tail_mid"] + props["tail"] * 0.5 * _v(
            np.cos(tail_angle + 0.4 * ch["tail"]), np.sin(tail_angle + 0.4 * ch["tail"])
        )
        return p

    def parts(self, props, look, p, scale, ch):
        r = lambda key, k=1.0: props[key] * scale * k  # noqa: E731
        far_limbs = _darker(look.limbs, 0.72)
        parts = []
        for name in ("right_front", "right_back"):
            paw = name.replace("front", "front_paw").replace("back", "back_paw")
            parts.append(
                Part(
                    "capsule",
                    np.array([p[f"{name}_base"], p[f"{name}_joint"]]),
                    (r("leg_r"), r("leg_r", 0.85)),
                    far_limbs,
                )
            )
            parts.append(
                Part(
                    "capsule",
                    np.array([p[f"{name}_joint"], p[paw]]),
                    (r("leg_r", 0.85), r("leg_r", 0.8)),
                    far_limbs,
                )
            )
        parts.append(
            Part(
                "capsule",
                np.array([p["root_of_tail"], p["tail_mid"]]),
                (r("tail_r"), r("tail_r", 0.9)),
                look.limbs,
            )
        )
        parts.append(
            Part(
                "capsule",
                np.array([p["tail_mid"], p["tail_tip"]]),
                (r("tail_r", 0.9), r("tail_r", 0.5)),
                look.limbs,
            )
        )
        parts.append(
            Part(
                "capsule",
                np.array([p["left_hip"], p["left_shoulder"]]),
                (r("body_r", 0.95), r("body_r")),
                look.body,
            )
        )
        parts.append(
            Part("capsule", np.array([p["neck"], p["head"]]), (r("body_r", 0.45), r("head", 0.6)), look.body)
        )
        for name in ("left_front", "left_back"):
            paw = name.replace("front", "front_paw").replace("back", "back_paw")
            parts.append(
                Part(
                    "capsule",
                    np.array([p[f"{name}_base"], p[f"{name}_joint"]]),
                    (r("leg_r"), r("leg_r", 0.85)),
                    look.limbs,
                )
            )
            parts.append(
                Part(
                    "capsule",
                    np.array([p[f"{name}_joint"], p[paw]]),
                    (r("leg_r", 0.85), r("leg_r", 0.8)),
                    look.limbs,
                )
            )
        parts.append(
            Part(
                "capsule",
                np.array([p["head"], p["ear"]]),
                (r("head", 0.35), r("head", 0.12)),
                _darker(look.head, 0.8),
            )
        )
        parts.append(Part("ellipse", p["head"][None], (r("head"), r("head", 0.9)), look.head))
        parts.append(
            Part("capsule", np.array([p["head"], p["nose"]]), (r("head", 0.55), r("head", 0.35)), look.head)
        )
        parts.append(
            Part(
                "ellipse",
                p["nose"][None],
                (r("head", 0.17), r("head", 0.14)),
                Fill((0.1, 0.08, 0.08), shade=0),
            )
        )
        parts += _face(p, "head", r("head"), look, ch, 1.0, side_view=True)
        parts += _accessory(
            look, p["head"] + (p["ear"] - p["head"]) * 0.7, r("head", 0.8), ch["head"], (p["neck"], p["head"])
        )
        return parts


class Bird(BodyPlan):
    name, noun, format, view = "bird", "bird", BIRD, "side"

    def proportions(self, rng):
        props = {
            "body_rx": rng.uniform(0.16, 0.26), "body_ry": rng.uniform(0.1, 0.16), "neck": rng.uniform(0.05, 0.14),
            "head": rng.uniform(0.07, 0.11), "beak": rng.uniform(0.05, 0.12), "wing1": rng.uniform(0.12, 0.2),
            "wing2": rng.uniform(0.12, 0.22), "wing_r": rng.uniform(0.035, 0.06), "thigh": rng.uniform(0.08, 0.14),
            "shin": rng.uniform(0.08, 0.14), "tail": rng.uniform(0.1, 0.22),
        }  # fmt: skip
        total = props["body_ry"] + props["thigh"] + props["shin"] + props["neck"] + 2 * props["head"]
        return {k: v / total for k, v in props.items()}

    def points(self, props, ch):
        p: Points = {}
        legs = {}
        for name, s, dx in (("left", "l", 0.02), ("right", "r", -0.02)):
            hip = _v(dx, -props["body_ry"] * 0.6)
            knee = hip + props["thigh"] * _rot(_v(0, -1), ch[f"leg_{s}_swing"] + 0.3)
            foot = knee + props["shin"] * _rot(_v(0, -1), ch[f"leg_{s}_swing"] - 0.5 * ch[f"knee_{s}"] - 0.2)
            legs[name] = (knee, foot)
        ground = props["body_ry"] * 0.6 + props["thigh"] + props["shin"]
        offset = _v(0, -(ground + min(foot[1] for _, foot in legs.values())))
        for name, (knee, foot) in legs.items():
            p[f"{name}_knee"], p[f"{name}_foot"] = knee + offset, foot + offset
        p["body"] = offset
        p["neck"] = offset + _v(props["body_rx"] * 0.7, props["body_ry"] * 0.5)
        p["head"] = p["neck"] + props["neck"] * _rot(_v(0.3, 1), ch["head"])
        hr = props["head"]
        p["beak"] = p["head"] + _rot(_v(hr + props["beak"], -0.1 * hr), ch["head"])
        p["eye"] = p["head"] + _rot(_v(0.35 * hr, 0.25 * hr), ch["head"])
        p["mouth"] = p["head"] + _rot(_v(hr + 0.4 * props["beak"], -0.2 * hr), ch["head"])
        p["tail"] = offset + _v(
            -props["body_rx"] - props["tail"],
            props["body_ry"] * 0.2 + 0.3 * props["tail"] * (0.5 + ch["tail"]),
        )
        for name, s, dx in (("left", "l", 0.0), ("right", "r", -0.04)):
            root = offset + _v(dx + props["body_rx"] * 0.2, props["body_ry"] * 0.55)
            flap = ch[f"arm_{s}_raise"] - 0.18  # 0 = folded back along the body
            upper = np.pi + 0.12 - 0.7 * flap + 0.3 * ch[f"arm_{s}_swing"]
            elbow = root + props["wing1"] * _v(np.cos(upper), np.sin(upper))
            lower = upper + 0.25 - 0.3 * flap - 0.3 * ch[f"elbow_{s}"]
            tip = elbow + props["wing2"] * _v(np.cos(lower), np.sin(lower))
            p[f"{name}_wing_root"], p[f"{name}_wing_elbow"], p[f"{name}_wing_tip"] = root, elbow, tip
        return p

    def parts(self, props, look, p, scale, ch):
        r = lambda key, k=1.0: props[key] * scale * k  # noqa: E731
        leg_fill = Fill((0.85, 0.6, 0.15), shade=0.1)
        parts = [
            Part(
                "capsule",
                np.array([p["right_wing_root"], p["right_wing_elbow"]]),
                (r("wing_r"), r("wing_r", 0.8)),
                _darker(look.limbs, 0.7),
            ),
            Part(
                "capsule",
                np.array([p["right_wing_elbow"], p["right_wing_tip"]]),
                (r("wing_r", 0.8), r("wing_r", 0.3)),
                _darker(look.limbs, 0.7),
            ),
        ]
        for name in ("right", "left"):
            parts.append(
                Part(
                    "capsule",
                    np.array([p["body"] + (p[f"{name}_knee"] - p["body"]) * 0.3, p[f"{name}_knee"]]),
                    (scale * 0.012, scale * 0.012),
                    leg_fill,
                    outline=False,
                )
            )
            parts.append(
                Part(
                    "capsule",
                    np.array([p[f"{name}_knee"], p[f"{name}_foot"]]),
                    (scale * 0.012, scale * 0.012),
                    leg_fill,
                    outline=False,
                )
            )
        tail_base = p["body"] + _v(-r("body_rx", 0.8), 0) * np.sign(p["neck"][0] - p["body"][0] or 1)
        parts.append(
            Part(
                "capsule",
                np.array([tail_base, p["tail"]]),
                (r("body_ry", 0.5), r("body_ry", 0.25)),
                look.limbs,
            )
        )
        angle = float(np.arctan2(p["neck"][1] - p["body"][1], p["neck"][0] - p["body"][0])) * 0.3
        parts.append(Part("ellipse", p["body"][None], (r("body_rx"), r("body_ry")), look.body, angle=angle))
        parts.append(
            Part("capsule", np.array([p["neck"], p["head"]]), (r("body_ry", 0.5), r("head", 0.7)), look.body)
        )
        parts.append(Part("ellipse", p["head"][None], (r("head"), r("head")), look.head))
        beak_base = p["head"] + (p["beak"] - p["head"]) * 0.45
        normal = _rot((p["beak"] - p["head"]) / max(np.linalg.norm(p["beak"] - p["head"]), 1e-6), np.pi / 2)
        open_ = 0.15 + 0.35 * float(np.clip(ch["mouth"], 0, 1))
        parts.append(
            Part(
                "polygon",
                np.array(
                    [
                        beak_base + normal * r("head", 0.45),
                        beak_base - normal * r("head", 0.45 * open_ * 2),
                        p["beak"],
                    ]
                ),
                (),
                Fill((0.95, 0.7, 0.1), shade=0.1),
            )
        )
        parts += _face({"eye": p["eye"]}, "head", r("head"), look, ch, 1.0, side_view=True)
        parts.append(
            Part(
                "capsule",
                np.array([p["left_wing_root"], p["left_wing_elbow"]]),
                (r("wing_r"), r("wing_r", 0.8)),
                look.limbs,
            )
        )
        parts.append(
            Part(
                "capsule",
                np.array([p["left_wing_elbow"], p["left_wing_tip"]]),
                (r("wing_r", 0.8), r("wing_r", 0.3)),
                look.limbs,
            )
        )
        parts += _accessory(look, p["head"] + _v(0, -r("head", 0.8)), r("head", 0.8), ch["head"], None)
        return parts


class Blob(BodyPlan):
    """A round creature with 2 to 6 limbs: arms, legs and feelers as the channels allow."""

    name, noun, format, view = "blob", "blob creature", BLOB6, "front"
    #: base angle of each limb (0 = up, clockwise, character's left on image right) and its channel
    LIMBS = (("limb1", 1.9, "arm_l"), ("limb2", -1.9, "arm_r"), ("limb3", 2.75, "leg_l"),
             ("limb4", -2.75, "leg_r"), ("limb5", 0.45, "arm_l"), ("limb6", -0.45, "arm_r"))  # fmt: skip

    def proportions(self, rng):
        count = int(rng.choice([2, 3, 4, 4, 5, 6]))
        present = (
            sorted(rng.choice(6, size=count, replace=False).tolist()) if count < 4 else list(range(count))
        )
        return {
            "rx": rng.uniform(0.22, 0.34), "ry": rng.uniform(0.2, 0.32), "limb1": rng.uniform(0.14, 0.24),
            "limb2": rng.uniform(0.12, 0.22), "limb_r": rng.uniform(0.025, 0.05),
            **{f"has_{i}": float(i in present) for i in range(6)},
        }  # fmt: skip

    def points(self, props, ch):
        p: Points = {}
        lowest = 0.0
        raw = {}
        for i, (name, base, channel) in enumerate(self.LIMBS):
            side = 1.0 if base > 0 else -1.0
            s = "l" if side > 0 else "r"
            if channel.startswith("arm"):
                angle = (
                    base
                    + side * (ch[f"arm_{s}_raise"] - 0.18) * (0.8 if i < 4 else -0.5)
                    + 0.3 * ch[f"arm_{s}_swing"]
                )
                bend = ch[f"elbow_{s}"]
            else:
                angle = base - side * (ch[f"leg_{s}_spread"] - 0.06) + 0.4 * ch[f"leg_{s}_swing"]
                bend = ch[f"knee_{s}"]
            direction = _v(np.sin(angle), np.cos(angle))
            start = _v(props["rx"] * 0.85 * np.sin(angle), props["ry"] * 0.85 * np.cos(angle))
            joint = start + props["limb1"] * direction
            tip = joint + props["limb2"] * _rot(direction, -side * 0.7 * bend)
            raw[name] = (start, joint, tip, bool(props[f"has_{i}"]))
            if raw[name][3]:
                lowest = min(lowest, tip[1], joint[1])
        offset = _v(0, -(min(lowest, -props["ry"])) - props["ry"])
        p["center"] = offset
        for name, (start, joint, tip, _) in raw.items():
            p[f"{name}_start"], p[f"{name}_joint"], p[f"{name}_tip"] = (
                start + offset,
                joint + offset,
                tip + offset,
            )
        tilt = ch["head"]
        p["left_eye"] = offset + _rot(_v(0.35 * props["rx"], 0.3 * props["ry"]), tilt)
        p["right_eye"] = offset + _rot(_v(-0.35 * props["rx"], 0.3 * props["ry"]), tilt)
        p["mouth"] = offset + _rot(_v(0, -0.25 * props["ry"]), tilt)
        p["top"] = offset + _v(0, props["ry"])
        return p

    def hidden(self, ch):
        return {"left_eye", "right_eye", "mouth"} if ch["facing"] < 0.15 else set()

    def keypoints(self, props, p, ch):
        points = super().keypoints(props, p, ch)
        # creatures differ in limb count: a limb they lack is (0, 0, 0), as OpenPose writes
        # "no such joint" (its place off the image would read as a cropped limb)
        for i in range(6):
            if not props[f"has_{i}"]:
                points[4 + 2 * i : 6 + 2 * i] = 0.0
        return points

    def parts(self, props, look, p, scale, ch):
        parts = []
        r = props["limb_r"] * scale
        for i, (name, base, _) in enumerate(self.LIMBS):
            if not props[f"has_{i}"]:
                continue
            fill = look.limbs if base > 0 else _darker(look.limbs, 0.9)
            parts.append(
                Part("capsule", np.array([p[f"{name}_start"], p[f"{name}_joint"]]), (r, r * 0.85), fill)
            )
            parts.append(
                Part("capsule", np.array([p[f"{name}_joint"], p[f"{name}_tip"]]), (r * 0.85, r * 0.6), fill)
            )
        parts.append(
            Part(
                "ellipse",
                p["center"][None],
                (props["rx"] * scale, props["ry"] * scale),
                look.body,
                angle=-ch["lean"] * 0,
            )
        )
        parts += _face(p, "center", props["rx"] * scale * 0.75, look, ch, ch["facing"])
        parts += _accessory(look, p["top"], props["rx"] * scale * 0.6, ch["head"], None)
        return parts


PLANS: dict[str, BodyPlan] = {plan.name: plan for plan in (Humanoid(), Quadruped(), Bird(), Blob())}
