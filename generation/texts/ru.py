"""Russian phrase catalogue: shared openers, generic wishes and closings plus the occasion table."""

from types import MappingProxyType

from generation.texts import LanguageTexts
from generation.texts import ru_holidays as h
from generation.texts import ru_life as life

_OPENERS = {
    "warm": (
        ("{name}, {phrase}!", "{name}, от всей души поздравляю тебя {phrase}!", "{name}, поздравляю {phrase}!"),
        ("{Cheer}!", "От всей души поздравляю {phrase}!", "Дорогой друг, {phrase}!"),
    ),
    "formal": (
        ("{name}, примите мои искренние поздравления {phrase}!", "{name}, сердечно поздравляю Вас {phrase}!",
         "{name}, позвольте поздравить Вас {phrase}!"),
        ("Примите мои искренние поздравления {phrase}!", "Сердечно поздравляю Вас {phrase}!",
         "Позвольте поздравить Вас {phrase}!"),
    ),
    "funny": (
        ("{name}, {phrase}! Держись: сейчас будут пожелания.",
         "{name}, внимание: официально поздравляю тебя {phrase}!",
         "{name}, {phrase}! Приготовь улыбку — она сегодня пригодится."),
        ("{Cheer}! Держись: сейчас будут пожелания.", "Внимание-внимание! Официально поздравляю {phrase}!",
         "{Cheer}! Приготовь улыбку — она сегодня пригодится."),
    ),
    "romantic": (
        ("{name}, любимый человек, {phrase}!", "{name}, моё счастье, {phrase}!",
         "{name}, самый дорогой мой человек, поздравляю тебя {phrase}!"),
        ("Любимый человек, {phrase}!", "Моё счастье, {phrase}!",
         "Самый дорогой мой человек, поздравляю тебя {phrase}!"),
    ),
    "short": (("{name}, {phrase}!", "{name}, поздравляю {phrase}!"), ("{Cheer}!", "Поздравляю {phrase}!")),
}

_GENERIC_WISHES = {
    "warm": (
        "Желаю крепкого здоровья, тепла и людей рядом, с которыми легко и радостно.",
        "Пусть в жизни будет больше поводов для улыбок и меньше — для тревог.",
        "Пусть всё задуманное получается легко, а мечты сбываются чуть раньше, чем ожидалось.",
        "Желаю, чтобы дома всегда ждали, а в делах всё складывалось удачно.",
    ),
    "formal": (
        "Желаю Вам крепкого здоровья, благополучия и успехов во всех начинаниях.",
        "Пусть каждый день приносит Вам новые достижения и приятные события.",
        "Желаю Вам стабильности, вдохновения и надёжных единомышленников.",
    ),
    "funny": (
        "Желаю, чтобы зарплата росла быстрее цен, а кофе всегда был горячим.",
        "Пусть холодильник будет полным, а будильник — добрым.",
        "Желаю, чтобы интернет ловил везде, а неприятности не находили тебя нигде.",
    ),
    "romantic": (
        "Пусть каждый наш день будет наполнен нежностью и теплом.",
        "Ты делаешь мою жизнь светлее — пусть и твоя будет полна счастья.",
        "Пусть рядом со мной тебе всегда будет спокойно и тепло.",
    ),
}

_CLOSINGS = {
    "warm": ("Обнимаю!", "С теплом и наилучшими пожеланиями!", "Пусть всё будет хорошо!"),
    "formal": ("С уважением и наилучшими пожеланиями.", "Всего Вам самого доброго!",
               "Искренне желаю Вам всего наилучшего!"),
    "funny": ("Улыбайся почаще — тебе идёт!", "Обнимаю крепко, но аккуратно!", "Подпись: твой личный поздравлятор."),
    "romantic": ("Люблю тебя!", "Целую и обнимаю!", "Ты — моё самое большое счастье."),
}

_PLURAL_CLOSINGS = {
    "warm": ("Обнимаю!", "С теплом и наилучшими пожеланиями!", "Пусть всё будет хорошо!"),
    "formal": ("С уважением и наилучшими пожеланиями.", "Всего вам самого доброго!"),
    "funny": ("Улыбайтесь почаще — вам идёт!", "Обнимаю крепко, но аккуратно!"),
    "romantic": ("Пусть любовь всегда будет с вами!", "Счастья вам!"),
}

_MENTIONS = {
    "warm": (
        "Сегодня особенный повод — {occasion}.",
        "{Occasion} — отличный повод для радости и тёплых слов.",
        "{Occasion} — это прекрасно, и я от души радуюсь вместе с тобой.",
    ),
    "formal": (
        "{Occasion} — важное событие, и я искренне разделяю Вашу радость.",
        "Сегодня особенный повод — {occasion}.",
    ),
    "funny": (
        "{Occasion} — повод настолько хороший, что пропустить его было бы преступлением.",
        "Сегодня особенный повод — {occasion}, а значит, без поздравлений никак.",
    ),
}

TEXTS = LanguageTexts(
    openers=MappingProxyType(_OPENERS),
    generic_wishes=MappingProxyType(_GENERIC_WISHES),
    closings=MappingProxyType(_CLOSINGS),
    plural_closings=MappingProxyType(_PLURAL_CLOSINGS),
    details_lines=("И ещё: {details}", "Отдельно хочу сказать: {details}", "Не могу не добавить: {details}"),
    mentions=MappingProxyType(_MENTIONS),
    unknown_titles=("Поздравляю!",),
    occasions=MappingProxyType({
        "birthday": h.BIRTHDAY, "jubilee": h.JUBILEE, "new_year": h.NEW_YEAR, "christmas": h.CHRISTMAS,
        "march_8": h.MARCH_8, "feb_23": h.FEB_23, "valentine": h.VALENTINE,
        "professional_day": h.PROFESSIONAL_DAY, "wedding": life.WEDDING, "anniversary": life.ANNIVERSARY,
        "thanks": life.THANKS, "graduation": life.GRADUATION, "new_baby": life.NEW_BABY,
        "retirement": life.RETIREMENT, "get_well": life.GET_WELL, "new_job": life.NEW_JOB,
        "congratulations": life.CONGRATULATIONS,
    }),
)
