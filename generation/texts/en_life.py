"""English texts for life events, thanks and get-well wishes."""

from generation.texts import occasion

_ALL_TONES = ("warm", "formal", "funny", "romantic", "short")
_SHARED_TONES = ("warm", "formal", "funny", "short")

WEDDING = occasion(
    ("Happy Wedding Day!", "Congratulations, Newlyweds!", "Best Wishes on Your Wedding!"),
    "Congratulations on your wedding", "on your wedding day",
    warm=(
        "May your marriage be strong and your home full of love and laughter.",
        "I wish you to take care of each other and to walk towards your dreams together.",
        "May every new day of your family be happier than the one before.",
    ),
    formal=(
        "I wish you mutual understanding, prosperity and family happiness for many years to come.",
        "May your union be a source of support and inspiration for you both.",
        "Please accept my wishes of peace, harmony and prosperity for your new family.",
    ),
    funny=(
        "May your only arguments be about whose turn it is to say \u201cI love you\u201d.",
        "May choosing a film for the evening be your biggest disagreement.",
        "You now share a fridge — may it always be full.",
    ),
    romantic=(
        "May your love grow deeper with every year.",
        "I wish you to look at each other the way you do today for the rest of your lives.",
        "May your happiness be as endless as your wedding rings.",
    ),
    openers={
        "warm": (("{name}, congratulations on your wedding!", "Dear {name}, warmest wishes on your wedding day!"),
                 ("Congratulations on your wedding!", "Warmest wishes on your wedding day!")),
        "formal": (("Dear {name}, please accept my sincere congratulations on your marriage.",),
                   ("Please accept my sincere congratulations on your marriage.",)),
        "short": (("Congratulations on your wedding, {name}!",), ("Congratulations on your wedding!",)),
    },
    generic=False,
    plural_tones=_ALL_TONES,
)

ANNIVERSARY = occasion(
    ("Happy Anniversary!", "Anniversary Wishes!"),
    "Happy anniversary", "on your anniversary",
    warm=(
        "May your love keep growing stronger.",
        "Wishing you many more happy years together, cosy evenings and shared joys.",
        "You are a wonderful example of love that stands the test of time.",
    ),
    formal=(
        "I wish you understanding, prosperity and family warmth for many years to come.",
        "May every year ahead bring your family joy and harmony.",
    ),
    funny=(
        "All these years together and still arguing over the blanket? That is true love.",
        "I wish you as much patience with each other as you have already shown — and a little extra.",
    ),
    romantic=(
        "Every year with you is the happiest of my life.",
        "Thank you for every day we have spent together.",
        "I choose you again and again — and I always will.",
    ),
    openers={
        "romantic": (("{name}, my love, happy anniversary to us!", "My dearest {name}, happy anniversary!"),
                     ("My love, happy anniversary to us!", "Happy anniversary, my dearest!")),
    },
    generic=False,
    plural_tones=_SHARED_TONES,
)

THANKS = occasion(
    ("Thank You!", "With Gratitude!", "Thanks a Million!"),
    "Thank you", "",
    warm=(
        "Your help and support mean so much to me.",
        "People like you make the world a kinder place.",
        "May all the good you do come back to you many times over.",
    ),
    formal=(
        "Your help and professionalism played an important role, and I truly appreciate it.",
        "I sincerely value your attention and support.",
        "May your kindness and generosity come back to you many times over.",
    ),
    funny=(
        "Your help arrived so perfectly on time that I am starting to suspect you have superpowers.",
        "If there were medals for kindness, you would have run out of shelf space by now.",
        "I promise to repay the favour — in cookies.",
    ),
    romantic=(
        "Thank you for being you and for being by my side.",
        "With you even the most ordinary days become special.",
        "Your care warms me better than any sunshine.",
    ),
    openers={
        "warm": (("{name}, thank you so much!", "Thank you, {name}, from the bottom of my heart!"),
                 ("Thank you so much!", "Thank you from the bottom of my heart!")),
        "formal": (("Dear {name}, please accept my sincere gratitude.",), ("Please accept my sincere gratitude.",)),
        "funny": (("{name}, thanks a million — and I am rounding down!",),
                  ("Thanks a million — and I am rounding down!",)),
        "romantic": (("{name}, my love, thank you for everything!",), ("My love, thank you for everything!",)),
        "short": (("Thank you, {name}!",), ("Thank you!",)),
    },
)

GRADUATION = occasion(
    ("Happy Graduation!", "Congratulations, Graduate!"),
    "Congratulations on your graduation", "on your graduation",
    warm=(
        "A whole world of opportunities lies ahead — may every door open easily.",
        "I wish you to find work you love and never stop learning.",
        "May your knowledge become a solid foundation for great achievements.",
    ),
    formal=(
        "I wish you a successful start in your profession and steady career growth.",
        "May the knowledge you have gained open new horizons for you.",
        "I wish you determination and good luck in this new stage of life.",
    ),
    funny=(
        "Exams are over — you can finally sleep more than five hours in a row.",
        "May you find your dream job before you run out of coffee money.",
        "May adult life be as exciting as the night before an exam, only without the stress.",
    ),
    romantic=(
        "I am so proud of you and I believe in every one of your dreams.",
        "May your new path be bright, and I will always be by your side.",
        "You will achieve everything you dream of — I have no doubt about it.",
    ),
)

NEW_BABY = occasion(
    ("Welcome, Little One!", "Congratulations on Your New Baby!"),
    "Congratulations on your new baby", "on the arrival of your little one",
    warm=(
        "May your little one grow up healthy, strong and happy.",
        "Wishing you peaceful nights, joyful days and many happy moments together.",
        "May your home be filled with children's laughter and endless love.",
    ),
    formal=(
        "I wish the little one good health and your family prosperity and joy.",
        "May the birth of your child open the happiest pages in your family's life.",
    ),
    funny=(
        "I wish you a full night's sleep at least occasionally — say, on public holidays.",
        "May you run out of nappies less often than you run out of good mood.",
        "You now own a tiny alarm clock with a built-in cuddle function.",
    ),
    romantic=(
        "Thank you for this little miracle.",
        "There are more of us now — and so much more happiness.",
        "I love you more than anything in the world.",
    ),
    openers={
        "romantic": (("{name}, my love, congratulations on our little miracle!",),
                     ("My love, congratulations on our little miracle!",)),
    },
    generic=False,
    plural_tones=_SHARED_TONES,
)

RETIREMENT = occasion(
    ("Happy Retirement!", "Enjoy Your Well-Earned Rest!"),
    "Happy retirement", "on your retirement",
    warm=(
        "May your well-earned rest be full of favourite pastimes and pleasant company.",
        "Wishing you good health, energy and time for everything you never got round to.",
        "May this new chapter of life be calm, joyful and interesting.",
    ),
    formal=(
        "Thank you for your many years of hard work and professionalism.",
        "I wish you good health, vitality and joy in every day.",
        "May new pursuits bring you joy while your experience continues to inspire your colleagues.",
    ),
    funny=(
        "You can now officially fire your alarm clock.",
        "May your garden bring you harvests and not just chores.",
        "Monday is now just another day off.",
    ),
    romantic=(
        "At last we will have more time for each other.",
        "Ahead of us are our travels, long walks and long talks.",
        "With you every day will be a holiday.",
    ),
)

GET_WELL = occasion(
    ("Get Well Soon!", "Wishing You a Speedy Recovery!"),
    "Get well soon", "for a speedy recovery",
    warm=(
        "May your strength return a little more each day and the illness stay in the past.",
        "Take care of yourself, rest and get your strength back.",
        "Wishing you good health, energy and a great mood.",
    ),
    formal=(
        "May your strength and energy return to you day by day.",
        "I wish you good health and a swift return to your usual routine.",
        "Please take care of yourself and rest well.",
    ),
    funny=(
        "Those germs have clearly picked a fight with the wrong person.",
        "Get well quickly: even coffee is not as good without you.",
        "Follow the doctor's orders: tea, a blanket and unlimited TV series.",
    ),
    romantic=(
        "I miss your smile so much — come back to me soon.",
        "I am here and I will always take care of you.",
        "May my love be the best medicine for you.",
    ),
    openers={
        "warm": (("{name}, get well soon!", "{name}, sending you warm wishes for a speedy recovery!"),
                 ("Get well soon!", "Sending you warm wishes for a speedy recovery!")),
        "formal": (("Dear {name}, I wish you a speedy and full recovery.",),
                   ("I wish you a speedy and full recovery.",)),
        "funny": (("{name}, being ill is boring, so please get well soon!",),
                  ("Being ill is boring, so please get well soon!",)),
        "romantic": (("{name}, my love, get well soon!",), ("My love, get well soon!",)),
        "short": (("Get well soon, {name}!",), ("Get well soon!",)),
    },
    generic=False,
)

NEW_JOB = occasion(
    ("Congratulations on Your New Job!", "Good Luck in Your New Role!"),
    "Congratulations on your new job", "on your new job",
    warm=(
        "May your new workplace become a source of inspiration and new opportunities.",
        "Wishing you a friendly team, interesting tasks and quick success.",
        "May every working day bring you satisfaction and a reason to be proud.",
    ),
    formal=(
        "I wish you a successful start, professional growth and the recognition of your colleagues.",
        "May your new position open up broad prospects for you.",
        "I have no doubt that great success awaits you in your new role.",
    ),
    funny=(
        "May the office coffee machine be more reliable than the weather forecast.",
        "May your probation fly by and your bonuses arrive without delay.",
        "Wishing you colleagues who never touch other people's food in the fridge.",
    ),
    romantic=(
        "I am so proud of you — you deserve the very best.",
        "May your new job bring you joy, and may our evenings always be ours.",
    ),
)

CONGRATULATIONS = occasion(
    ("Congratulations!", "Best Wishes!"),
    "Congratulations", "",
    openers={
        "warm": (("{name}, congratulations!", "Congratulations, {name}, with all my heart!"),
                 ("Congratulations!", "Congratulations with all my heart!")),
        "formal": (("Dear {name}, please accept my sincere congratulations.",),
                   ("Please accept my sincere congratulations.",)),
        "funny": (("{name}, congratulations! Great reason, and the wishes are even better.",),
                  ("Congratulations! Great reason, and the wishes are even better.",)),
        "romantic": (("{name}, my love, congratulations!",), ("My love, congratulations!",)),
        "short": (("Congratulations, {name}!",), ("Congratulations!",)),
    },
)
