"""The app's longer explanations in plain words, kept in one place so the pages stay layout only
and say the same thing everywhere."""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["ADAPT_PRIVACY", "ADAPT_WHY", "LOCO_FOR_YOU", "LOCO_JARGON",
           "LINEAR_HEAD", "NEXT_STEPS", "NO_HISTORY", "UNCERTAIN_MEANS", "adapt_how_much", "head_recipe", "trust"]

UNCERTAIN_MEANS = (
    "“Uncertain” means no emotion reached the threshold set in the sidebar: the voice did not "
    "clearly sound like any one of the six. The best guess is still shown, but treat it as a hint, "
    "not an answer. Calm, flat speech often ends up here."
)

def trust(new_setup_accuracy: float | None = None) -> str:
    """How far to trust an answer; with the leave-one-corpus-out accuracy when it is known."""
    how_often = ("only some of the time" if new_setup_accuracy is None
                 else f"about {new_setup_accuracy:.0%} of the time")
    return (f"How far to trust it: on recording setups it never heard, the model is right {how_often} "
            "(see **Test results** for the figures per language and per emotion), and a confident answer "
            "can still be wrong. Use it to explore how a voice sounds, never to judge a person.")

NEXT_STEPS = (
    "What to do next: if the answer surprises you, record again speaking a little longer (5–10 s) "
    "and closer to the microphone; a single word is hard to judge. Long recordings show how the "
    "emotion changes over time, below. When **Adapt to my voice** is in the menu, a few clips of "
    "your ordinary speech make answers for your microphone and room more reliable."
)

LOCO_FOR_YOU = (
    "**What this means for you.** Your laptop, your microphone and your room are a new recording "
    "setup, like the held-out corpus in each row. Expect the *strict* figure at first. If you give "
    "the model a few clips of your ordinary speech (**Adapt to my voice** on the Analyse page), "
    "expect something nearer the *adapted* figure. Some emotions are much harder than others "
    "(the recall table): a low number there means that emotion is often missed."
)

LOCO_JARGON = """
- **Leave one corpus out.** The model was trained on all corpora but one and tested on the one
  left out: every clip of it, all of its speakers, its microphones, its room and (for nEMO and
  TurEV-DB) its language were new to the model. Each row of the table is one such test.
- **Accuracy** is the share of clips whose top emotion was right. When a corpus has many clips of
  one emotion, accuracy rewards guessing that emotion.
- **UAR** (unweighted average recall) is the mean of the per-emotion recalls: every emotion counts
  the same however many clips it has. Chance is 1 in 6 (17 %) when all six emotions occur.
- **Recall** of an emotion: of the clips with that emotion, the share the model named correctly.
  “—” means the corpus has no clip of that emotion, so there is nothing to measure: nEMO has no
  disgust, and TurEV-DB has only angry, happy, sad and calm (counted as neutral).
- **Strict**: the held-out corpus is scored with the statistics of the training corpora only, as
  a new user is before adapting.
- **Adapted**: the held-out corpus's features are first standardised with statistics from its own
  speech, without its labels. That is what **Adapt to my voice** does with your clips.
"""

ADAPT_WHY = (
    "Every microphone and room colours a voice, and every voice has its own pitch and pace. The "
    "model was trained on actors in studios; your setup is new to it. Adapting measures the average "
    "sound of *your* ordinary speech and judges your next clips relative to it, as the model was "
    "trained to do with each corpus. It needs no labels: just talk, and if you can, in more than one mood."
)

def adapt_how_much(gain: Mapping[str, Any] | None = None) -> str:
    """How much speech adapting needs, and why; with the shipped model's measured gain when it has one
    (``config.json``'s ``adaptation_gain``, written by training)."""
    measured = ""
    by_clips = (gain or {}).get("by_clips") or {}
    strict = (gain or {}).get("strict_uar")
    few, many = by_clips.get("5"), by_clips.get("20")
    calm = ((gain or {}).get("by_calm_clips") or {}).get("5")
    if all(isinstance(value, (int, float)) for value in (strict, few, many)):
        measured = (f"Measured on corpora the model never heard, 5 short clips per speaker in mixed moods raised "
                    f"the average recall from {strict:.0%} to {few:.0%}, and 20 clips to {many:.0%}")
        measured += (f"; 5 calm clips only to {calm:.0%}. " if isinstance(calm, (int, float)) else ". ")
    neutral = (gain or {}).get("neutral_recall") or {}
    calm_cost = ""
    if all(isinstance(neutral.get(key), (int, float)) for key in ("strict", "by_calm_clips")) and \
            neutral["by_calm_clips"] < neutral["strict"]:
        calm_cost = (f" Adapted with calm clips only, the model recognised calm speech as neutral "
                     f"{neutral['by_calm_clips']:.0%} of the time, against {neutral['strict']:.0%} without adapting.")
    return (
        "**How much:** about **15–30 seconds of speech**, as 3 to 6 clips of 5–10 seconds (read a "
        "paragraph aloud, describe your day, in any mood). It is used from 5 clips, or from 15 s of "
        "speech over two clips or more. Why: the statistics are thousands of numbers, and a few "
        f"seconds do not pin them down. {measured}\n\n**Which speech:** varied, ordinary speech works best: the mood you adapt "
        "with becomes your \"normal\", so adapting only to a calm voice makes calm speech seldom come out as "
        f"neutral (and only shouting, shouting seldom as angry).{calm_cost}"
    )

ADAPT_PRIVACY = (
    "Nothing is stored on disk: the clips are reduced to a few averages that live only in this "
    "browser session's memory on the server, and they are gone when you clear them, close the tab "
    "or the server restarts."
)

NO_HISTORY = "No training history in {directory} (history.json). Training writes it."

LINEAR_HEAD = (
    "This model has no training curves, and that is expected. It reuses a speech model (the "
    "Whisper encoder) that is frozen: it was not trained here. Only a small final layer was fitted, "
    "a linear model over the encoder's averaged outputs, and it is solved in one go rather "
    "than improved epoch by epoch, so there is no accuracy-per-epoch curve to draw. How well it "
    "does is measured on corpora it never heard: see **Test results**."
)


def head_recipe(recipe: Mapping[str, Any]) -> str:
    """The Whisper model's head in one line: which encoder layers it reads and how it was fitted."""
    layers = recipe.get("layers")
    parts = []
    if isinstance(layers, (list, tuple)) and layers:
        parts.append(f"reads the averaged outputs of encoder layers {', '.join(str(x) for x in layers)}")
    if recipe.get("head") == "lr":
        strength = f" (C = {recipe['C']:g})" if isinstance(recipe.get("C"), (int, float)) else ""
        parts.append(f"is a logistic regression{strength}")
    elif recipe.get("head") == "ridge":
        strength = f" (α = {recipe['alpha']:g})" if isinstance(recipe.get("alpha"), (int, float)) else ""
        parts.append(f"is a ridge regression{strength}")
    elif recipe.get("head"):
        parts.append(f"is a small network (`{recipe['head']}`)")
    text = ("The head " + " and ".join(parts) + ".") if parts else ""
    if recipe.get("train_norm") == "speaker":
        text += " In training, each speaker's clips were standardised with that speaker's own statistics."
    return text
