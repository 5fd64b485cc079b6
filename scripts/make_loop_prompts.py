#!/usr/bin/env python3
"""Writes the prompt files of the iterative training-loop experiment:

- examples/loop-train.jsonl: 480 training prompts (ids lt-0001 .. lt-0480);
- examples/loop-heldout.jsonl: 120 held-out prompts (ids lh-0001 .. lh-0120).

Every prompt is a task template with a topic filled in, plus a preference from one of six
categories (concise, thorough, clarity, humorous, format, professional) whose constraints a
small chat model can meet in a short answer (about 64-100 generated tokens) some of the
time. Held-out prompts take their topics from a separate list that never appears in
training, so the held-out file measures whether what the loop learns carries over to new
subjects, not whether it remembers the training instructions.

The line format is the one of examples/prefs-train.jsonl; constraint ids and arguments are
the ones docs/constraints.md lists (and Sources/PRSCore/Constraints/Check.swift parses).

The output is deterministic (fixed seeds, no other randomness). Before writing, the script
checks that held-out instructions and topics do not occur in training, that ids are unique,
that every prompt has a category and at least one well-formed constraint, and that each
preference states each of its constraints; it exits 1 naming the offending prompt if not.

    python3 scripts/make_loop_prompts.py                 # write examples/loop-*.jsonl
    python3 scripts/make_loop_prompts.py --check         # verify the files match; write nothing
    python3 scripts/make_loop_prompts.py --out-dir DIR   # write (or check) under DIR
"""
import argparse
import json
import os
import random
import sys

TRAIN_FILE = "loop-train.jsonl"
HELDOUT_FILE = "loop-heldout.jsonl"
TRAIN_COUNT = 480
HELDOUT_COUNT = 120
TRAIN_SEED = 4801
HELDOUT_SEED = 1201

CATEGORIES = ["concise", "thorough", "clarity", "humorous", "format", "professional"]

# ---------------------------------------------------------------------------------------
# Task templates. Each has a phrasing for a "thing" topic (a noun phrase: "the water cycle")
# and one for an "activity" topic (a gerund phrase: "fixing a leaky tap").
# ---------------------------------------------------------------------------------------
TASKS = [
    ("explain", "Explain {t} in simple terms.",
                "Explain what {t} involves."),
    ("tips", "Give me a few tips for learning about {t}.",
             "Give me a few tips for {t}."),
    ("beginner", "Describe {t} to a complete beginner.",
                 "Describe {t} to someone who has never tried it."),
    ("compare", "Compare two different aspects of {t}.",
                "Compare two different approaches to {t}."),
    ("note", "Write a short note to a friend about {t}.",
             "Write a short note to a friend who is thinking about {t}."),
    ("email", "Write a short email to a colleague suggesting a lunchtime talk about {t}.",
              "Write a short email to a colleague suggesting a lunchtime talk about {t}."),
    ("steps", "List the steps someone could follow to learn about {t}.",
              "List the steps for {t}."),
    ("why-matters", "Summarise why it is worth knowing about {t}.",
                    "Summarise why {t} is worth the effort."),
    ("pros-cons", "What are the pros and cons of spending a weekend learning about {t}?",
                  "Give the pros and cons of {t}."),
    ("story", "Write a short story about {t}.",
              "Write a short story about someone {t} for the first time."),
    ("scene", "Write a short scene in which two friends argue about {t}.",
              "Write a short scene in which two friends argue about {t}."),
    ("question", "What is one thing most people get wrong about {t}?",
                 "What is the most common mistake people make when {t}?"),
    ("surprise", "Tell me something surprising about {t}.",
                 "Tell me something surprising about {t}."),
    ("analogy", "Explain {t} using an everyday comparison.",
                "Explain {t} using a comparison a child would understand."),
    ("advice", "My friend is curious about {t}. What should I tell them?",
               "My friend is about to try {t}. What advice should I give them?"),
]

# ---------------------------------------------------------------------------------------
# Topics by domain: training topics and held-out topics, each split into things and
# activities. The held-out lists never share a topic (or a topic's text) with training.
# ---------------------------------------------------------------------------------------
TOPICS = {
    "science": {
        "train": {
            "thing": ["the water cycle", "photosynthesis", "volcanoes", "earthquakes",
                      "static electricity", "magnets", "black holes", "DNA",
                      "the phases of the moon", "rainbows", "sound waves",
                      "the greenhouse effect", "ocean tides"],
            "activity": ["growing salt crystals at home", "doing a kitchen science experiment"],
        },
        "heldout": {
            "thing": ["the northern lights", "plate tectonics", "comets"],
            "activity": ["building a simple electric circuit"],
        },
    },
    "cooking": {
        "train": {
            "thing": ["sourdough bread", "homemade pasta", "fermented foods", "cast iron pans",
                      "fresh herbs", "olive oil", "breakfast smoothies"],
            "activity": ["baking cookies", "meal prepping for the week", "grilling vegetables",
                         "making pancakes", "cooking rice on the stove", "roasting a chicken",
                         "making vegetable soup"],
        },
        "heldout": {
            "thing": ["fresh salsa", "spice blends"],
            "activity": ["making dumplings", "pickling cucumbers"],
        },
    },
    "travel": {
        "train": {
            "thing": ["travel insurance", "train travel in Europe", "youth hostels", "jet lag",
                      "airport security", "night trains", "passport renewals"],
            "activity": ["packing a carry-on bag", "planning a road trip",
                         "travelling on a budget", "learning basic phrases before a trip",
                         "booking cheap flights", "visiting a national park",
                         "exploring a new city on foot"],
        },
        "heldout": {
            "thing": ["cruise holidays", "ferry crossings"],
            "activity": ["travelling with a toddler", "choosing a guidebook"],
        },
    },
    "money": {
        "train": {
            "thing": ["compound interest", "emergency funds", "credit scores", "budgeting apps",
                      "index funds", "inflation", "student loans"],
            "activity": ["making a monthly budget", "saving for a holiday",
                         "paying off credit card debt", "splitting bills with flatmates",
                         "comparing phone plans", "buying a used car",
                         "saving for a house deposit"],
        },
        "heldout": {
            "thing": ["retirement accounts", "insurance deductibles"],
            "activity": ["haggling at a flea market", "tracking daily spending"],
        },
    },
    "health habits": {
        "train": {
            "thing": ["sleep hygiene", "morning stretches", "posture at a desk",
                      "screen time before bed", "healthy snacks", "hand washing", "meditation"],
            "activity": ["drinking enough water", "walking every day", "starting a running habit",
                         "cutting back on sugar", "taking short breaks from screens",
                         "building a bedtime routine", "stretching after exercise"],
        },
        "heldout": {
            "thing": ["standing desks", "power naps"],
            "activity": ["doing breathing exercises", "keeping a food diary"],
        },
    },
    "technology": {
        "train": {
            "thing": ["password managers", "cloud storage", "smart speakers",
                      "two-factor authentication", "spreadsheets", "e-readers", "Wi-Fi routers",
                      "open-source software", "computer viruses", "GPS navigation", "QR codes"],
            "activity": ["backing up photos", "learning to code",
                         "keeping a laptop battery healthy", "spotting phishing emails"],
        },
        "heldout": {
            "thing": ["3D printers", "noise-cancelling headphones", "smartwatches"],
            "activity": ["building a simple website"],
        },
    },
    "history": {
        "train": {
            "thing": ["the printing press", "the pyramids of ancient Egypt", "Roman roads",
                      "the Silk Road", "the invention of the telephone", "the first moon landing",
                      "medieval castles", "the Industrial Revolution",
                      "the ancient Olympic Games", "Viking ships", "the history of chocolate",
                      "the Renaissance"],
            "activity": ["researching family history", "visiting a historic site"],
        },
        "heldout": {
            "thing": ["the Great Wall of China", "the invention of the bicycle",
                      "old lighthouses", "the history of maps"],
            "activity": [],
        },
    },
    "nature": {
        "train": {
            "thing": ["honeybees", "migrating birds", "coral reefs", "rainforests", "mushrooms",
                      "tree rings", "wetlands", "octopuses", "wildflowers"],
            "activity": ["birdwatching", "identifying trees on a walk",
                         "planting a pollinator garden", "exploring rock pools",
                         "hiking in the mountains"],
        },
        "heldout": {
            "thing": ["hedgehogs", "wolves", "moss gardens"],
            "activity": ["watching frogs in a pond"],
        },
    },
    "sports": {
        "train": {
            "thing": ["the offside rule in football", "swimming strokes", "tennis scoring",
                      "basketball defence", "cricket", "cycling helmets", "rock climbing",
                      "team sports for kids"],
            "activity": ["training for a 5K race", "learning to swim as an adult",
                         "warming up before a match", "choosing running shoes",
                         "joining a local sports club", "practising yoga"],
        },
        "heldout": {
            "thing": ["badminton", "archery", "rowing machines"],
            "activity": ["learning to ski"],
        },
    },
    "work": {
        "train": {
            "thing": ["remote work", "stand-up meetings", "performance reviews",
                      "networking events", "email etiquette", "job interviews", "time blocking",
                      "burnout"],
            "activity": ["asking for a raise", "writing a CV", "giving a presentation",
                         "running a productive meeting", "onboarding a new colleague",
                         "prioritising a to-do list"],
        },
        "heldout": {
            "thing": ["four-day work weeks", "shared calendars"],
            "activity": ["mentoring a junior employee", "leaving a job gracefully"],
        },
    },
    "home": {
        "train": {
            "thing": ["houseplants", "smoke alarms", "energy-saving light bulbs",
                      "home insulation", "a tidy garage"],
            "activity": ["decluttering a wardrobe", "painting a bedroom wall", "fixing a leaky tap",
                         "spring cleaning", "organising a kitchen pantry", "caring for a lawn",
                         "hanging shelves", "composting kitchen scraps",
                         "keeping a home warm in winter"],
        },
        "heldout": {
            "thing": ["rainwater barrels"],
            "activity": ["unclogging a drain", "choosing a sofa", "childproofing a living room"],
        },
    },
    "arts": {
        "train": {
            "thing": ["watercolour painting", "jazz", "street photography", "poetry slams",
                      "pottery", "origami", "film soundtracks", "impressionism", "choir singing",
                      "calligraphy"],
            "activity": ["learning the piano", "writing a short poem", "knitting a scarf",
                         "sketching people in cafes"],
        },
        "heldout": {
            "thing": ["stand-up comedy", "puppet theatre", "mosaic art"],
            "activity": ["learning the ukulele"],
        },
    },
}

# ---------------------------------------------------------------------------------------
# Constraints: each maker returns (constraint object, the words that state it).
# Ids and argument names as Check.swift parses them.
# ---------------------------------------------------------------------------------------
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven"}


def quoted(words, joiner="and"):
    q = ['"%s"' % w for w in words]
    if len(q) == 1:
        return q[0]
    return ", ".join(q[:-1]) + " " + joiner + " " + q[-1]


def words_less(rng, n):
    text = rng.choice(["keep it under %d words", "use fewer than %d words",
                       "stay below %d words in total"]) % n
    return {"id": "length_constraints:number_words", "num_words": n, "relation": "less than"}, text


def words_at_least(rng, n):
    text = rng.choice(["write at least %d words", "use no fewer than %d words",
                       "give at least %d words of detail"]) % n
    return {"id": "length_constraints:number_words", "num_words": n, "relation": "at least"}, text


def sentences_less(rng, n):
    text = rng.choice(["use fewer than %s sentences", "keep it to fewer than %s sentences"]) % NUMBER_WORDS[n]
    return {"id": "length_constraints:number_sentences", "num_sentences": n, "relation": "less than"}, text


def sentences_at_least(rng, n):
    text = rng.choice(["write at least %s full sentences", "use at least %s sentences"]) % NUMBER_WORDS[n]
    return {"id": "length_constraints:number_sentences", "num_sentences": n, "relation": "at least"}, text


def keyword(rng, word, phrasings=None):
    text = rng.choice(phrasings or ['mention the word "%s"', 'use the word "%s" somewhere',
                                    'include the word "%s"']) % word
    return {"id": "keywords:existence", "keywords": [word]}, text


def keywords(rng, words, phrasings=None):
    text = rng.choice(phrasings or ["use the words %s", "include the words %s"]) % quoted(words)
    return {"id": "keywords:existence", "keywords": list(words)}, text


def forbidden(rng, words, what):
    text = rng.choice(["avoid %s such as %s" % (what, quoted(words, "or")),
                       "never use the words %s" % quoted(words, "or"),
                       "do not use %s like %s" % (what, quoted(words, "or"))])
    return {"id": "keywords:forbidden_words", "forbidden_words": list(words)}, text


def postscript(rng, funny):
    kind = "joking postscript" if funny else "postscript"
    text = rng.choice(['finish with a %s starting with "P.S."', 'add a %s that starts with "P.S."']) % kind
    return {"id": "detectable_content:postscript", "postscript_marker": "P.S."}, text


def bullets(rng, n):
    text = rng.choice(['use exactly %s bullet points (lines starting with "- ")',
                       'answer in exactly %s bullet points, each line starting with "- "']) % NUMBER_WORDS[n]
    return {"id": "detectable_format:number_bullet_lists", "num_bullets": n}, text


def steps(rng, n, relation):
    marks = ", ".join("%d." % i for i in range(1, n + 1))
    if relation == "at least":
        marks += ", ..."
    text = rng.choice(["give %s %s numbered steps (%s)", "lay it out as %s %s numbered steps (%s)"]) % (
        relation, NUMBER_WORDS[n], marks)
    return {"id": "prs:numbered_steps", "num_steps": n, "relation": relation}, text


def title(rng):
    text = rng.choice(["give it a title in double angular brackets, like <<Title>>",
                       "put a title in double angular brackets on its own line, like <<My Title>>"])
    return {"id": "detectable_format:title"}, text


def lowercase(rng):
    text = rng.choice(["write everything in lowercase letters, with no capitals at all",
                       "use only lowercase letters, no capital letters anywhere"])
    return {"id": "change_case:english_lowercase"}, text


def no_comma(rng):
    text = rng.choice(["do not use any commas", "write without a single comma"])
    return {"id": "punctuation:no_comma"}, text


def start_with(rng, phrase):
    text = rng.choice(['begin with the exact words "%s"', 'start the answer with "%s"']) % phrase
    return {"id": "prs:start_with", "start_phrase": phrase}, text


def end_with(rng, phrase):
    text = rng.choice(['end with the exact phrase "%s"', 'finish with the exact words "%s"']) % phrase
    return {"id": "startend:end_checker", "end_phrase": phrase}, text


def paragraphs_at_least(rng, n):
    text = rng.choice(["write at least %s paragraphs separated by a blank line",
                       "split it into at least %s paragraphs with a blank line between them"]) % NUMBER_WORDS[n]
    return {"id": "prs:number_paragraphs", "num_paragraphs": n, "relation": "at least"}, text


def highlights(rng, n):
    text = rng.choice(["highlight at least %s key phrases with asterisks, like *this*",
                       "mark at least %s important phrases with *asterisks*"]) % NUMBER_WORDS[n]
    return {"id": "detectable_format:number_highlighted_sections", "num_highlights": n}, text


JARGON = [["utilize", "leverage", "optimize"], ["complex", "complicated"],
          ["essentially", "basically"], ["various", "numerous"], ["crucial", "vital"],
          ["significant", "significantly"], ["furthermore", "moreover"]]
CASUAL = [["awesome", "stuff", "kinda"], ["super", "totally", "guys"],
          ["basically", "awesome", "yeah"], ["gonna", "wanna", "stuff"], ["awesome", "totally"]]
FUNNY_WORDS = ["banana", "penguin", "rubber duck", "llama", "socks", "pickle", "giraffe",
               "pizza", "squirrel", "moustache", "kazoo", "hamster"]
FUNNY_ENDINGS = ["Stay silly!", "Just kidding!", "Ta-da!", "Have a giggle!"]
EXAMPLE_PHRASINGS = ['include a concrete example, using the word "%s"',
                     'illustrate it with an example that uses the word "%s"']
FORMAL_STARTS = ["Summary:", "Overview:", "Key points:", "In brief:"]
FORMAL_ENDINGS = ["I hope this helps.", "Kind regards.", "Thank you for your attention.",
                  "Best regards."]

# Per category: how the preference opens, and the constraint sets (1 or 2 constraints each).
LEADS = {
    "concise": ["Short and to the point:", "Brief, please:", "Keep it tight:",
                "I'm in a hurry, so be concise:", "Concise answer wanted:"],
    "thorough": ["Thorough, please:", "Give me the full picture:", "Don't skimp on detail:",
                 "Be thorough:", "I want a complete answer:"],
    "clarity": ["Crystal clear, please:", "Make it easy to follow:", "Plain and clear:",
                "Explain it simply:", "Keep it clear for a newcomer:"],
    "humorous": ["Make it funny:", "Playful and light-hearted:", "Give it a comic twist:",
                 "Keep it silly:", "Add some humour:"],
    "format": ["Format matters:", "Neatly structured:", "Follow this layout:",
               "Tidy formatting, please:", "Structure it like this:"],
    "professional": ["Professional tone:", "Formal and polished:", "Keep it businesslike:",
                     "Write it as a consultant would:", "Polished and neutral:"],
}

VARIANTS = {
    "concise": [
        lambda r: [words_less(r, r.choice([40, 50, 60]))],
        lambda r: [sentences_less(r, r.choice([3, 4]))],
        lambda r: [words_less(r, r.choice([50, 60])), sentences_less(r, 4)],
        lambda r: [words_less(r, r.choice([50, 60])), no_comma(r)],
        lambda r: [start_with(r, "In short"), sentences_less(r, 4)],
    ],
    "thorough": [
        lambda r: [words_at_least(r, r.choice([40, 50, 60]))],
        lambda r: [keyword(r, "example", EXAMPLE_PHRASINGS)],
        lambda r: [words_at_least(r, r.choice([40, 50])), keyword(r, "example", EXAMPLE_PHRASINGS)],
        lambda r: [sentences_at_least(r, r.choice([4, 5]))],
        lambda r: [paragraphs_at_least(r, 2)],
        lambda r: [keyword(r, "because", ['give the reasons behind it, using the word "%s"',
                                          'explain why, using the word "%s"']), words_at_least(r, 40)],
        lambda r: [keywords(r, ["first", "second"], ["cover at least two points, introduced with the words %s",
                                                     "walk through it in order, using the words %s"])],
    ],
    "clarity": [
        lambda r: [forbidden(r, r.choice(JARGON), "jargon")],
        lambda r: [sentences_less(r, r.choice([5, 6])), forbidden(r, r.choice(JARGON), "jargon")],
        lambda r: [start_with(r, "Simply put"), sentences_less(r, 5)],
        lambda r: [steps(r, 3, "exactly"), forbidden(r, r.choice(JARGON), "jargon")],
        lambda r: [keyword(r, "simple"), sentences_less(r, r.choice([5, 6]))],
    ],
    "humorous": [
        lambda r: [postscript(r, True)],
        lambda r: [keyword(r, r.choice(FUNNY_WORDS)), postscript(r, True)],
        lambda r: [keyword(r, r.choice(FUNNY_WORDS))],
        lambda r: [keyword(r, r.choice(FUNNY_WORDS)), words_less(r, 80)],
        lambda r: [end_with(r, r.choice(FUNNY_ENDINGS))],
        lambda r: [keyword(r, r.choice(FUNNY_WORDS)), end_with(r, r.choice(FUNNY_ENDINGS))],
    ],
    "format": [
        lambda r: [bullets(r, r.choice([3, 4]))],
        lambda r: [steps(r, 3, r.choice(["exactly", "at least"]))],
        lambda r: [title(r), bullets(r, 3)],
        lambda r: [title(r)],
        lambda r: [lowercase(r)],
        lambda r: [lowercase(r), bullets(r, 3)],
        lambda r: [title(r), steps(r, 3, "at least")],
        lambda r: [highlights(r, 2)],
    ],
    "professional": [
        lambda r: [no_comma(r)],
        lambda r: [start_with(r, r.choice(FORMAL_STARTS))],
        lambda r: [end_with(r, r.choice(FORMAL_ENDINGS))],
        lambda r: [forbidden(r, r.choice(CASUAL), "casual words")],
        lambda r: [start_with(r, r.choice(FORMAL_STARTS)), words_less(r, 80)],
        lambda r: [keyword(r, "recommend"), no_comma(r)],
        lambda r: [end_with(r, r.choice(FORMAL_ENDINGS)), forbidden(r, r.choice(CASUAL), "casual words")],
    ],
}


def join_fragments(parts):
    if len(parts) == 1:
        return parts[0]
    # ", and" when a fragment has a comma of its own, so the parts stay apart.
    last = ", and " if any("," in part for part in parts) else " and "
    return ", ".join(parts[:-1]) + last + parts[-1]


# ---------------------------------------------------------------------------------------
# Building the files
# ---------------------------------------------------------------------------------------
def topic_list(split):
    """(topic, kind, domain) for one split, in the order written above."""
    out = []
    for domain, splits in TOPICS.items():
        for kind in ("thing", "activity"):
            for t in splits[split][kind]:
                out.append((t, kind, domain))
    return out


class Deck:
    """Draws items in shuffled rounds, so each is used about equally often."""

    def __init__(self, rng, items):
        self.rng, self.items, self.pending = rng, list(items), []

    def draw(self):
        if not self.pending:
            self.pending = list(self.items)
            self.rng.shuffle(self.pending)
        return self.pending.pop()


def build(split, count, prefix, seed):
    rng = random.Random(seed)
    topics = topic_list(split)
    rng.shuffle(topics)
    categories = [CATEGORIES[i % len(CATEGORIES)] for i in range(count)]
    rng.shuffle(categories)
    variant_decks = {c: Deck(rng, range(len(VARIANTS[c]))) for c in CATEGORIES}
    lead_decks = {c: Deck(rng, LEADS[c]) for c in CATEGORIES}
    prompts = []
    for i in range(count):
        # Task i mod 15 with topic i mod len(topics): while count < lcm(15, len(topics)) no
        # (task, topic) pair repeats, and the tasks are used equally often.
        _, thing_form, activity_form = TASKS[i % len(TASKS)]
        topic, kind, _ = topics[i % len(topics)]
        instruction = (thing_form if kind == "thing" else activity_form).format(t=topic)
        category = categories[i]
        made = VARIANTS[category][variant_decks[category].draw()](rng)
        preference = lead_decks[category].draw() + " " + join_fragments([text for _, text in made]) + "."
        prompts.append({
            "id": "%s-%04d" % (prefix, i + 1),
            "instruction": instruction,
            "preference": preference,
            "category": category,
            "constraints": [c for c, _ in made],
            # Kept out of the file; used by the checks.
            "_topic": topic,
            "_task": TASKS[i % len(TASKS)][0],
        })
    return prompts


# ---------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------
# The arguments each constraint id used here takes, with their types (as Check.swift reads them).
RELATIONS = {"less than", "at most", "exactly", "at least", "more than"}
SCHEMA = {
    "length_constraints:number_words": {"num_words": int, "relation": "relation"},
    "length_constraints:number_sentences": {"num_sentences": int, "relation": "relation"},
    "keywords:existence": {"keywords": list},
    "keywords:forbidden_words": {"forbidden_words": list},
    "detectable_content:postscript": {"postscript_marker": str},
    "detectable_format:number_bullet_lists": {"num_bullets": int},
    "prs:numbered_steps": {"num_steps": int, "relation": "relation"},
    "detectable_format:title": {},
    "change_case:english_lowercase": {},
    "punctuation:no_comma": {},
    "prs:start_with": {"start_phrase": str},
    "startend:end_checker": {"end_phrase": str},
    "prs:number_paragraphs": {"num_paragraphs": int, "relation": "relation"},
    "detectable_format:number_highlighted_sections": {"num_highlights": int},
}


def number_stated(text, n):
    return str(n) in text or NUMBER_WORDS.get(n, "\0") in text


def constraint_problem(c):
    """Why a constraint object is malformed, or None."""
    cid = c.get("id")
    if cid not in SCHEMA:
        return "unknown or unsupported constraint id %r" % cid
    fields = SCHEMA[cid]
    extra = set(c) - set(fields) - {"id"}
    if extra:
        return "%s: unexpected arguments %s" % (cid, sorted(extra))
    for name, kind in fields.items():
        if name not in c:
            return "%s: missing %s" % (cid, name)
        v = c[name]
        if kind == "relation" and v not in RELATIONS:
            return "%s: %s is not a relation" % (cid, name)
        if kind is int and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            return "%s: %s is not a whole number" % (cid, name)
        if kind is str and (not isinstance(v, str) or not v.strip()):
            return "%s: %s is not a non-empty string" % (cid, name)
        if kind is list and (not isinstance(v, list) or not v or
                             not all(isinstance(s, str) and s for s in v)):
            return "%s: %s is not a non-empty list of strings" % (cid, name)
    return None


def stated(preference, c):
    """Whether the preference text states constraint c in words."""
    p = preference
    low = p.lower()
    cid = c["id"]
    if cid == "length_constraints:number_words":
        return number_stated(p, c["num_words"]) and "word" in low
    if cid == "length_constraints:number_sentences":
        return number_stated(p, c["num_sentences"]) and "sentence" in low
    if cid in ("keywords:existence", "keywords:forbidden_words"):
        return all('"%s"' % w in p for w in c[cid == "keywords:existence" and "keywords" or "forbidden_words"])
    if cid == "detectable_content:postscript":
        return '"%s"' % c["postscript_marker"] in p and "postscript" in low
    if cid == "detectable_format:number_bullet_lists":
        return number_stated(p, c["num_bullets"]) and "bullet" in low
    if cid == "prs:numbered_steps":
        return number_stated(p, c["num_steps"]) and "numbered step" in low and c["relation"] in low
    if cid == "detectable_format:title":
        return "<<" in p and "title" in low
    if cid == "change_case:english_lowercase":
        return "lowercase" in low
    if cid == "punctuation:no_comma":
        return "comma" in low
    if cid == "prs:start_with":
        return '"%s"' % c["start_phrase"] in p
    if cid == "startend:end_checker":
        return '"%s"' % c["end_phrase"] in p
    if cid == "prs:number_paragraphs":
        return number_stated(p, c["num_paragraphs"]) and "paragraph" in low
    if cid == "detectable_format:number_highlighted_sections":
        return number_stated(p, c["num_highlights"]) and "*" in p
    return False


def verify(train, heldout):
    """Every problem found, as 'id: message' lines."""
    problems = []
    train_topics = topic_list("train")
    heldout_topics = topic_list("heldout")

    # Topic lists: disjoint, and no topic is part of another across the two lists.
    train_names = [t for t, _, _ in train_topics]
    heldout_names = [t for t, _, _ in heldout_topics]
    for names, label in ((train_names, "training"), (heldout_names, "held-out")):
        seen = set()
        for t in names:
            if t.lower() in seen:
                problems.append("topic %r: listed twice in the %s topics" % (t, label))
            seen.add(t.lower())
    for h in heldout_names:
        for t in train_names:
            if h.lower() in t.lower() or t.lower() in h.lower():
                problems.append("held-out topic %r overlaps training topic %r" % (h, t))

    # Ids unique across both files.
    ids = {}
    for p in train + heldout:
        if p["id"] in ids:
            problems.append("%s: id used twice" % p["id"])
        ids[p["id"]] = True

    # Instructions unique within a file.
    for prompts in (train, heldout):
        first = {}
        for p in prompts:
            if p["instruction"] in first:
                problems.append("%s: same instruction as %s: %r" % (p["id"], first[p["instruction"]], p["instruction"]))
            first.setdefault(p["instruction"], p["id"])

    # (a) No held-out instruction text appears in training.
    train_instructions = [(p["id"], p["instruction"].lower()) for p in train]
    for p in heldout:
        h = p["instruction"].lower()
        for tid, t in train_instructions:
            if h in t:
                problems.append("%s: held-out instruction appears in training prompt %s: %r" % (p["id"], tid, p["instruction"]))

    # (b) No held-out topic in training: not among the training prompts' topics, and no
    # held-out topic string inside any training instruction.
    train_topic_set = {p["_topic"].lower() for p in train}
    for p in heldout:
        if p["_topic"].lower() in train_topic_set:
            problems.append("%s: held-out topic %r is a training topic" % (p["id"], p["_topic"]))
        if p["_topic"] not in heldout_names:
            problems.append("%s: topic %r is not in the held-out topic list" % (p["id"], p["_topic"]))
    for p in train:
        if p["_topic"] not in train_names:
            problems.append("%s: topic %r is not in the training topic list" % (p["id"], p["_topic"]))
        low = p["instruction"].lower()
        for h in heldout_names:
            if h.lower() in low:
                problems.append("%s: training instruction contains held-out topic %r: %r" % (p["id"], h, p["instruction"]))

    # (d) A category and at least one well-formed constraint, each stated by the preference.
    for p in train + heldout:
        if p.get("category") not in CATEGORIES:
            problems.append("%s: category %r is not one of %s" % (p["id"], p.get("category"), ", ".join(CATEGORIES)))
        if not p.get("constraints"):
            problems.append("%s: no constraints" % p["id"])
        if not p.get("instruction", "").strip() or not p.get("preference", "").strip():
            problems.append("%s: empty instruction or preference" % p["id"])
        for i, c in enumerate(p.get("constraints", [])):
            why = constraint_problem(c)
            if why:
                problems.append("%s: constraints[%d]: %s" % (p["id"], i, why))
            elif not stated(p["preference"], c):
                problems.append("%s: constraints[%d] (%s) is not stated in the preference %r" % (p["id"], i, c["id"], p["preference"]))
    return problems


def render(prompts):
    lines = []
    for p in prompts:
        row = {k: p[k] for k in ("id", "instruction", "preference", "category", "constraints")}
        lines.append(json.dumps(row))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description="Write the loop experiment's training and held-out prompt files.")
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"),
                    help="where the files go (default: the repository's examples/)")
    ap.add_argument("--check", action="store_true",
                    help="only verify that the files in --out-dir equal what would be written")
    args = ap.parse_args()

    train = build("train", TRAIN_COUNT, "lt", TRAIN_SEED)
    heldout = build("heldout", HELDOUT_COUNT, "lh", HELDOUT_SEED)
    problems = verify(train, heldout)
    if problems:
        for line in problems:
            print("make_loop_prompts: " + line, file=sys.stderr)
        print("make_loop_prompts: %d problem(s); nothing written" % len(problems), file=sys.stderr)
        return 1

    outputs = {TRAIN_FILE: render(train), HELDOUT_FILE: render(heldout)}
    out_dir = os.path.relpath(os.path.normpath(args.out_dir))
    if args.check:
        stale = []
        for name, text in outputs.items():
            path = os.path.join(out_dir, name)
            try:
                with open(path, encoding="utf-8") as f:
                    current = f.read()
            except OSError as e:
                stale.append("%s: cannot read (%s)" % (path, e.strerror))
                continue
            if current != text:
                stale.append("%s: differs from what scripts/make_loop_prompts.py generates" % path)
        if stale:
            for line in stale:
                print("make_loop_prompts: " + line, file=sys.stderr)
            print("make_loop_prompts: run python3 scripts/make_loop_prompts.py to regenerate", file=sys.stderr)
            return 1
        print("make_loop_prompts: %s (%d) and %s (%d) are up to date" % (
            os.path.join(out_dir, TRAIN_FILE), len(train), os.path.join(out_dir, HELDOUT_FILE), len(heldout)))
        return 0

    os.makedirs(out_dir, exist_ok=True)
    for name, text in outputs.items():
        with open(os.path.join(out_dir, name), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    print("make_loop_prompts: wrote %s (%d prompts, %d training topics) and %s (%d prompts, %d held-out topics)" % (
        os.path.join(out_dir, TRAIN_FILE), len(train), len(topic_list("train")),
        os.path.join(out_dir, HELDOUT_FILE), len(heldout), len(topic_list("heldout"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
