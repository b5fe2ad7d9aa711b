"""OVO-Bench's twelve tasks, its three categories, and the prompts each protocol asks them with.

The offline prompts are OVO-Bench's own (its ``constant.py``, which its released ``inference.py`` imports
and builds prompts from in ``OVOBenchOffline.build_prompt``); the streaming questions are those of the
Streamo repository's ``scripts/benchmark/ovo_script.py``. Both are restated here because a score is only
comparable with the published ones when the model is asked exactly what the published models were.
"""

from __future__ import annotations

BACKWARD = ("EPM", "ASI", "HLD")
REALTIME = ("STU", "OJR", "ATR", "ACR", "OCR", "FPD")
FORWARD = ("REC", "SSR", "CRR")
CATEGORIES: dict[str, tuple[str, ...]] = {"backward": BACKWARD, "realtime": REALTIME, "forward": FORWARD}
CATEGORY_OF = {task: category for category, tasks in CATEGORIES.items() for task in tasks}
CATEGORY_NAMES = {"backward": "Backward Tracing", "realtime": "Real-Time Visual Perception",
                  "forward": "Forward Active Responding"}
MULTIPLE_CHOICE = BACKWARD + REALTIME

# OVO-Bench's templates, character for character (the trailing spaces and the typos are theirs), written
# line by line so that no editor trims them.
BR_PROMPT_TEMPLATE = "\n".join([
    '',
    'Question: {}',
    'Options:',
    '{}',
    '',
    'Respond only with the letter corresponding to your chosen option (e.g., A, B, C). ',
    'Do not include any additional text or explanation in your response.',
    '',
])

REC_PROMPT_TEMPLATE = "\n".join([
    '',
    "You're watching a video in which people may perform a certain type of action repetively. ",
    "The person performing this kind of action are referred to as 'they' in the following statement.",
    "You're task is to count how many times have different people in the video perform this"
    ' kind of action in total.',
    'One complete motion counts as one. ',
    'Now, answer the following question: {}',
    'Provide your answer as a single number (e.g., 0, 1, 2, 3…) indicating the total count.',
    'Do not include any additional text or explanation in your response.',
    '',
])

SSR_PROMPT_TEMPLATE = "\n".join([
    '',
    "You're watching a tutorial video which contain a sequential of steps. ",
    'The following is one step from the whole procedures: ',
    '{}',
    'Your task is to determine if the man or woman in the video is currently performing this step.',
    'Answer only with "Yes" or "No".',
    'Do not include any additional text or explanation in your response.',
    '',
])

CRR_PROMPT_TEMPLATE = "\n".join([
    '',
    "You're responsible of answering questions based on the video content. ",
    'The following question are relevant to the latest frames, i.e. the end of the video.',
    '{}',
    'Decide whether existing visual content, especially latest frames, i.e. frames that near'
    ' the end of the video, provide enough information for answering the question.',
    'Answer only with "Yes" or "No".',
    'Do not include any additional text or explanation in your response.',
    '',
])


def offline_prompt(entry: dict, index: int | None = None) -> str:
    """The prompt OVO-Bench's offline inference sends for an entry (``index``: a forward task's test)."""
    task = entry["task"]
    if task in MULTIPLE_CHOICE:
        options = "; ".join(f"{chr(65 + i)}. {option}" for i, option in enumerate(entry["options"])) + ";"
        return BR_PROMPT_TEMPLATE.format(entry["question"], options)
    if task == "REC":
        return REC_PROMPT_TEMPLATE.format("How many times did they " + entry["activity"] + "?")
    if task == "SSR":
        return SSR_PROMPT_TEMPLATE.format(entry["test_info"][index]["step"])
    if task == "CRR":
        return CRR_PROMPT_TEMPLATE.format(entry["question"])
    raise ValueError(f"not an OVO-Bench task: {task}")


# The Streamo repository's streaming questions (ovo_script.py, VideoProcessor._build_question).
STREAM_CHOICE = "{question}\n{options}\nPlease provide your answer by stating the letter followed by the full option."
STREAM_SSR = ("Watch the following video and temporally localize the event. Respond once it has finished and"
              " summarize its time period. The given event is:\n'{question}'")
STREAM_REC = ("How many times did activity '{activity}' occur?\n{options}. Please respond with only the letter of"
              " the correct answer. Update your answer if it becomes different at a later time.")
REC_CHOICES = 10  # options A..J stand for the counts 1..10


def stream_choice_question(entry: dict) -> str:
    options = "\n".join(f"{chr(65 + i)}. {option}" for i, option in enumerate(entry["options"]))
    return STREAM_CHOICE.format(question=entry["question"], options=options)


def stream_rec_question(entry: dict) -> str:
    options = "\n".join(f"{chr(65 + i)}. {i + 1}" for i in range(REC_CHOICES))
    return STREAM_REC.format(activity=entry["activity"], options=options)


def stream_ssr_question(step: str) -> str:
    return STREAM_SSR.format(question=step)
