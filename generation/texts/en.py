"""English phrase catalogue: shared openers, generic wishes and closings plus the occasion table."""

from types import MappingProxyType

from generation.texts import LanguageTexts
from generation.texts import en_holidays as h
from generation.texts import en_life as life

_OPENERS = {
    "warm": (
        ("{name}, {cheer}!", "{Cheer}, {name}!", "Dear {name}, warmest wishes {phrase}!"),
        ("{Cheer}!", "Warmest wishes {phrase}!", "Dear friend, {cheer}!"),
    ),
    "formal": (
        ("Dear {name}, please accept my warmest wishes {phrase}.",
         "Dear {name}, allow me to extend my heartfelt wishes {phrase}."),
        ("Please accept my warmest wishes {phrase}.", "Allow me to extend my heartfelt wishes {phrase}."),
    ),
    "funny": (
        ("{name}, {cheer}! Brace yourself — wishes incoming.", "Attention, {name}: it is official — {cheer}!",
         "{Cheer}, {name}! Get your best smile ready — you will need it today."),
        ("{Cheer}! Brace yourself — wishes incoming.", "Attention, please: it is official — {cheer}!",
         "{Cheer}! Get your best smile ready — you will need it today."),
    ),
    "romantic": (
        ("{name}, my love, {cheer}!", "My dearest {name}, {cheer}!", "{Cheer}, {name}, my sweetheart!"),
        ("My love, {cheer}!", "My dearest, {cheer}!", "{Cheer}, my sweetheart!"),
    ),
    "short": (("{Cheer}, {name}!",), ("{Cheer}!",)),
}

_GENERIC_WISHES = {
    "warm": (
        "Wishing you good health, warmth and people around you who make every day brighter.",
        "May life give you more reasons to smile and fewer reasons to worry.",
        "May everything you plan come easily and your dreams come true a little sooner than expected.",
        "I wish that someone is always waiting for you at home and everything goes well at work.",
    ),
    "formal": (
        "I wish you good health, prosperity and success in everything you undertake.",
        "May every day bring you new achievements and pleasant events.",
        "I wish you stability, inspiration and reliable like-minded people around you.",
    ),
    "funny": (
        "May your salary grow faster than prices and your coffee always stay hot.",
        "May your fridge be full and your alarm clock be kind.",
        "May the internet work everywhere you go and trouble never find you.",
    ),
    "romantic": (
        "May every day we share be filled with tenderness and warmth.",
        "You make my life brighter — may yours be full of happiness too.",
        "May you always feel calm and loved with me.",
    ),
}

_CLOSINGS = {
    "warm": ("Hugs!", "With warmest wishes!", "All the best!"),
    "formal": ("With best regards.", "With warmest regards.", "Kind regards."),
    "funny": ("Keep smiling — it suits you!", "Hugs — gentle ones!", "Signed: your personal cheer squad."),
    "romantic": ("I love you!", "Love and kisses!", "You are my greatest happiness."),
}

_PLURAL_CLOSINGS = {
    "warm": ("Hugs!", "With warmest wishes!", "All the best!"),
    "formal": ("With best regards.", "With sincere wishes for every happiness."),
    "funny": ("Keep smiling — it suits you!", "Hugs to you both — gentle ones!"),
    "romantic": ("Wishing you endless love!", "All my love to you both!"),
}

_MENTIONS = {
    "warm": (
        "Today is a special occasion — {occasion}.",
        "{Occasion} — what a wonderful reason to celebrate!",
        "Here is to {occasion}, and I am so happy for you.",
    ),
    "formal": (
        "{Occasion} is a truly important occasion, and I sincerely share your joy.",
        "Today is a special occasion — {occasion}.",
    ),
    "funny": (
        "{Occasion} — a reason so good it would be a crime to skip it.",
        "Today is a special occasion — {occasion} — so no escaping congratulations.",
    ),
}

TEXTS = LanguageTexts(
    openers=MappingProxyType(_OPENERS),
    generic_wishes=MappingProxyType(_GENERIC_WISHES),
    closings=MappingProxyType(_CLOSINGS),
    plural_closings=MappingProxyType(_PLURAL_CLOSINGS),
    details_lines=("And one more thing: {details}", "I also want to say: {details}", "Also: {details}"),
    mentions=MappingProxyType(_MENTIONS),
    unknown_titles=("Congratulations!",),
    occasions=MappingProxyType({
        "birthday": h.BIRTHDAY, "jubilee": h.JUBILEE, "new_year": h.NEW_YEAR, "christmas": h.CHRISTMAS,
        "march_8": h.MARCH_8, "feb_23": h.FEB_23, "valentine": h.VALENTINE,
        "professional_day": h.PROFESSIONAL_DAY, "wedding": life.WEDDING, "anniversary": life.ANNIVERSARY,
        "thanks": life.THANKS, "graduation": life.GRADUATION, "new_baby": life.NEW_BABY,
        "retirement": life.RETIREMENT, "get_well": life.GET_WELL, "new_job": life.NEW_JOB,
        "congratulations": life.CONGRATULATIONS,
    }),
)
