"""The app's longer explanations in plain words, kept in one place so the pages stay layout only
and say the same thing everywhere."""

from __future__ import annotations

from typing import Any, Mapping

from ser_core.evaluation.loco_report import in_ten

__all__ = ["ADAPT_INTRO", "ADAPT_PRIVACY", "ADAPT_WHY", "COVERAGE_CHOICES", "LOCO_FOR_YOU", "LOCO_JARGON",
           "LINEAR_HEAD", "NEXT_STEPS", "NO_HISTORY", "SETS_MEAN", "adapt_how_much", "answer_text",
           "band_text", "coverage_figures", "coverage_line", "coverage_name", "head_recipe", "model_in_plain_words",
           "sidebar_coverage", "trust"]

# How an emotion reads in a sentence ("Angry or disgusted").
ADJECTIVES = {"angry": "angry", "disgust": "disgusted", "fear": "fearful", "happy": "happy", "neutral": "neutral",
              "sad": "sad"}
# The coverage settings a user can pick, in words (the model is calibrated for each).
COVERAGE_CHOICES = {0.8: "8 in 10", 0.9: "9 in 10", 0.95: "19 in 20"}
LANGUAGES = {"ravdess": "English", "tess": "English", "crema": "English", "nemo": "Polish", "turev": "Turkish",
             "ased": "Amharic", "casia": "Mandarin", "banglaser": "Bengali", "banglaser_ext": "Bengali"}


def answer_text(emotions: list[str] | tuple[str, ...]) -> str:
    """The answer in words: "Angry", "Angry or disgusted", or "Can't tell: angry, disgusted or fearful"."""
    names = [ADJECTIVES.get(emotion, emotion) for emotion in emotions]
    if not names:
        return "Can't tell"
    if len(names) == 1:
        return names[0].capitalize()
    if len(names) == 2:
        return f"{names[0].capitalize()} or {names[1]}"
    return f"Can't tell: {', '.join(names[:-1])} or {names[-1]}"


def band_text(emotions: list[str] | tuple[str, ...]) -> str:
    """A timeline band's label, short enough for a narrow band: the answer for one or two emotions,
    "Can't tell (4)" past that (the band's tooltip has the whole answer)."""
    if len(emotions) <= 2:
        return answer_text(emotions)
    return f"Can't tell ({len(emotions)})"


def coverage_name(coverage: float) -> str:
    """0.9 -> "9 in 10"."""
    return COVERAGE_CHOICES.get(round(float(coverage), 2), f"{coverage:.0%}")


def coverage_figures(config: Mapping[str, Any] | None, coverage: float = 0.9,
                     adapted: bool = False) -> dict[str, float] | None:
    """What training measured for this setting on corpora the model never heard: the lowest and the mean
    coverage over the held-out corpora and the mean share of one-emotion answers (``config.json``'s
    ``emotion_sets.held_out_coverages``), or None for a model without them."""
    block = ((config or {}).get("emotion_sets") or {}).get("held_out_coverages") or {}
    rows = (block.get("adapted" if adapted else "strict") or {}).get(str(round(float(coverage), 2)))
    if not isinstance(rows, Mapping) or not rows:
        return None
    try:
        covered = [float(row["coverage"]) for row in rows.values()]
        single = [float(row["single_rate"]) for row in rows.values()]
    except (KeyError, TypeError, ValueError):
        return None
    return {"lowest": min(covered), "mean": sum(covered) / len(covered), "single": sum(single) / len(single),
            "corpora": len(covered)}


def coverage_line(coverage: float, config: Mapping[str, Any] | None = None, adapted: bool = False) -> str:
    """One line under an answer: what "9 in 10" means, with the lowest figure measured when it is lower.

    A model trained before the sets were calibrated (no ``emotion_sets`` in its config) gets the plain rule
    instead, and the line says so rather than promise a figure nobody measured."""
    if config is not None and not config.get("emotion_sets"):
        return (f"**This model's answers are not calibrated:** it names every emotion it finds at least "
                f"{1 - coverage:.0%} likely; how often that holds the true one was not measured. Retrain it "
                "with train.py to get answers with a stated coverage.")
    text = (f"**What “{coverage_name(coverage)}” means:** on voices, microphones and rooms the model never "
            f"heard, answers like this held the true emotion about {coverage_name(coverage)} times; "
            "one emotion means it is fairly sure, several mean it could not tell them apart.")
    figures = coverage_figures(config, coverage, adapted)
    if figures and figures["lowest"] < coverage - 0.05:
        text += f" On the hardest test recordings it was only {in_ten(figures['lowest'])} in 10."
    return text


def sidebar_coverage(config: Mapping[str, Any] | None, coverage: float = 0.9) -> str | None:
    """The sidebar's sentence: how often the answer holds the true emotion, how often it names one."""
    figures = coverage_figures(config, coverage)
    if figures is None:
        return None
    return (f"On voices, microphones and rooms it never heard, its answer held the true emotion "
            f"{figures['mean']:.0%} of the time (set to {coverage_name(coverage)}); it named a single emotion for "
            f"{figures['single']:.0%} of clips, and gave two or more where it could not tell.")


def model_in_plain_words(config: Mapping[str, Any] | None) -> str:
    """What the served model is, for a non-expert: the speech model it listens with and what it learnt from."""
    config = config or {}
    data = config.get("data") if isinstance(config.get("data"), Mapping) else {}
    corpora = sorted(data) or sorted(config.get("training") or {})
    clips = sum(int(info.get("clips", 0)) for info in data.values() if isinstance(info, Mapping))
    languages = sorted({LANGUAGES.get(name, name) for name in corpora})
    learnt = ""
    if corpora:
        amount = f"{clips:,} recordings" if clips else "recordings"
        learnt = (f" It learnt from {amount} of actors in {len(corpora)} collections "
                  f"({', '.join(languages)}).")
    if config.get("kind") == "whisper_embedding_head":
        front = config.get("front_end")
        size = front.get("model", "base") if isinstance(front, Mapping) else "base"
        return (f"Listens with OpenAI's Whisper speech model ({size}) and names one of six emotions "
                f"with a small layer on top.{learnt}")
    return f"A small network that reads the sound's spectrum and names one of six emotions.{learnt}"


SETS_MEAN = (
    "The answer names the **fewest emotions that, on voices and rooms the model never heard, held the "
    "true one as often as the setting in the sidebar says** (9 in 10 by default). One emotion: the model "
    "is fairly sure. Two: one of those, it cannot say which. “Can't tell”: the voice fits several "
    "emotions about equally. The bars show how likely it found each one."
)

def trust(new_setup_accuracy: float | None = None) -> str:
    """How far to trust an answer; with the leave-one-corpus-out accuracy when it is known."""
    how_often = ("only some of the time" if new_setup_accuracy is None
                 else f"about {new_setup_accuracy:.0%} of the time")
    return (f"How far to trust it: on recording setups it never heard, its most likely emotion (the top bar) "
            f"was right {how_often}, and the answer above holds the true emotion as often as the sidebar's "
            "setting says (see **Test results** for the figures per language and per emotion). A single "
            "emotion can still be wrong. Use it to explore how a voice sounds, never to judge a person.")

NEXT_STEPS = (
    "What to do next: if the answer surprises you, record again speaking a little longer (5–10 s) "
    "and closer to the microphone; a single word is hard to judge. Long recordings show how the "
    "emotion changes over time, below. When **Adapt to my voice** is in the menu, a few clips of "
    "your ordinary speech make answers for your microphone and room more reliable."
)

LOCO_FOR_YOU = (
    "**What this means for you.** Your laptop, your microphone and your room are a new recording "
    "setup, like the held-out corpus in each row. Expect the *strict* figure at first. If you give "
    "the model a few clips of your ordinary speech (the **Adapt to my voice** page), "
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

ADAPT_INTRO = (
    "Give the model 15–30 seconds of your ordinary speech, as a few short clips, and it judges your next "
    "clips relative to how *you* sound in *your* room."
)

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
        measured = (f"Measured on recordings the model never heard, 5 short clips per speaker in mixed moods raised "
                    f"the share of each emotion it recognised (on average over the emotions) from {strict:.0%} to "
                    f"{few:.0%}, and 20 clips to {many:.0%}")
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
    elif recipe.get("head") == "ridge+lr":
        share = recipe.get("lr_weight")
        share_text = f", which gives {share:.0%} of the score" if isinstance(share, (int, float)) else ""
        parts.append("sums two linear models: a ridge regression (each training speaker standardised on their own "
                     f"clips) and a logistic regression (all clips standardised together){share_text}")
    elif recipe.get("head"):
        parts.append(f"is a small network (`{recipe['head']}`)")
    text = ("The head " + " and ".join(parts) + ".") if parts else ""
    if recipe.get("train_norm") == "speaker" and recipe.get("head") != "ridge+lr":  # said in its own words above
        text += " In training, each speaker's clips were standardised with that speaker's own statistics."
    return text
