"""The one conversion between our pose (three.js, VRM 1.0) and Unity's (VMC protocol).

Our ``PoseFrame`` is right-handed, Y up, the avatar facing +Z with its left arm along +X.
Unity is left-handed, Y up, and a humanoid faces +Z with its left arm along -X. The two
frames differ by mirroring X, so (a reflection applied to both the vector and the axis of a
rotation)::

    position   (x, y, z)     <->  (-x, y, z)
    quaternion (x, y, z, w)  <->  (x, -y, -z, w)

Both directions are the same map (it is its own inverse). Note: ``(x, y, -z)`` /
``(-x, -y, z, w)`` is the conversion for a glTF scene whose avatar faces -Z (VRM 0.x files);
our normalized pose faces +Z, so it mirrors X instead.

Bone names: VRM 1.0 humanoid names <-> Unity ``HumanBodyBones``. Expression names: VRM 1.0
<-> VRM 0.x blend shape presets (what VSeeFace and friends expect by default).
"""

from __future__ import annotations

from rigs.pose import Quaternion

Vector = tuple[float, float, float]


def position_to_unity(p: Vector) -> Vector:
    """three.js/VRM 1.0 position -> Unity (mirror X)."""
    return (-p[0], p[1], p[2])


def quaternion_to_unity(q: Quaternion) -> Quaternion:
    """three.js/VRM 1.0 rotation -> Unity rotation of the same pose."""
    return (q[0], -q[1], -q[2], q[3])


position_from_unity = position_to_unity
"""Unity position -> three.js (the mirror is its own inverse)."""
quaternion_from_unity = quaternion_to_unity
"""Unity rotation -> three.js (the mirror is its own inverse)."""


def _unity_bone_names() -> dict[str, str]:
    names = {b: b[0].upper() + b[1:] for b in (
        "hips", "spine", "chest", "upperChest", "neck", "head", "jaw")}
    for side in ("left", "right"):
        cap = side.capitalize()
        for bone in ("Eye", "Shoulder", "UpperArm", "LowerArm", "Hand", "UpperLeg",
                     "LowerLeg", "Foot", "Toes"):
            names[side + bone] = cap + bone
        # VRM 1.0 thumb Metacarpal/Proximal/Distal = Unity thumb Proximal/Intermediate/Distal
        names[side + "ThumbMetacarpal"] = cap + "ThumbProximal"
        names[side + "ThumbProximal"] = cap + "ThumbIntermediate"
        names[side + "ThumbDistal"] = cap + "ThumbDistal"
        for finger in ("Index", "Middle", "Ring", "Little"):
            for seg in ("Proximal", "Intermediate", "Distal"):
                names[side + finger + seg] = cap + finger + seg
    return names


UNITY_BONE: dict[str, str] = _unity_bone_names()
"""VRM 1.0 humanoid bone name -> Unity ``HumanBodyBones`` name."""
VRM_BONE: dict[str, str] = {u: v for v, u in UNITY_BONE.items()}
"""Unity ``HumanBodyBones`` name -> VRM 1.0 humanoid bone name."""

VRM0_PRESET: dict[str, str] = {
    "aa": "A", "ih": "I", "ou": "U", "ee": "E", "oh": "O",
    "blink": "Blink", "blinkLeft": "Blink_L", "blinkRight": "Blink_R",
    "happy": "Joy", "angry": "Angry", "sad": "Sorrow", "relaxed": "Fun",
    "surprised": "Surprised", "neutral": "Neutral",
    "lookUp": "LookUp", "lookDown": "LookDown", "lookLeft": "LookLeft", "lookRight": "LookRight",
}
"""VRM 1.0 expression name -> VRM 0.x blend shape preset (``surprised`` has no VRM 0 preset
and keeps a capitalised name, as VSeeFace's perfect-sync clips do)."""
VRM1_EXPRESSION: dict[str, str] = {v.lower(): k for k, v in VRM0_PRESET.items()}
"""Lower-cased VRM 0.x preset -> VRM 1.0 expression name."""


def expression_from_blend(name: str) -> str:
    """A VMC blend name (VRM 0 preset, any case, or a VRM 1 name) -> VRM 1.0 name."""
    if name in VRM0_PRESET:
        return name
    return VRM1_EXPRESSION.get(name.lower(), name)
