"""English texts for calendar holidays and birthdays."""

from generation.texts import occasion

BIRTHDAY = occasion(
    ("Happy Birthday!", "Birthday Wishes!"),
    "Happy birthday", "on your birthday",
    warm=(
        "May the year ahead be generous with joy, warm meetings and good news.",
        "I wish that your dreams come true and your loved ones are always close.",
        "May today be full of smiles, gifts and lovely surprises.",
        "Wishing you good health, inspiration and plenty of reasons to be proud of yourself.",
    ),
    formal=(
        "I wish you good health, prosperity and new professional heights.",
        "May the coming year bring you good fortune, inspiration and confidence in the future.",
        "I wish you harmony, success in every undertaking and the warmth of those close to you.",
    ),
    funny=(
        "May the cake be huge and the calories purely imaginary.",
        "Age is just the number of candles on the cake, not a reason to be sad.",
        "May your gifts beat your expectations and the candles go out on the first try.",
    ),
    romantic=(
        "You are the best thing that ever happened to me, and I am grateful for this day because of you.",
        "May this year be as wonderful as you are.",
        "I want to bring you joy every day, not only on your birthday.",
    ),
)

JUBILEE = occasion(
    ("Happy Milestone Birthday!", "Congratulations on Your Milestone!"),
    "Congratulations on your milestone", "on this milestone",
    warm=(
        "A milestone like this is a chance to look back with pride and forward with hope.",
        "May many more happy years, bright adventures and warm gatherings lie ahead.",
        "Wishing you good health, high spirits and the love of those closest to you.",
    ),
    formal=(
        "Behind you lies a remarkable journey; may new achievements await you ahead.",
        "I wish you good health, long life and boundless energy.",
        "May your wisdom and experience continue to inspire everyone around you.",
    ),
    funny=(
        "A round number means the candles on your cake now count as festive lighting.",
        "You can never have too many years — only too little cake.",
        "May you keep looking younger than your passport says.",
    ),
    romantic=(
        "Every year with you is a true gift to me.",
        "May this milestone open the happiest chapter of our life together.",
        "I love you today as much as on the very first day.",
    ),
)

NEW_YEAR = occasion(
    ("Happy New Year!", "Season's Greetings!", "Cheers to the New Year!"),
    "Happy New Year", "for the New Year",
    warm=(
        "May the coming year bring lots of happiness, warmth and cosy evenings.",
        "I wish you lovely surprises under the tree and good things all year round.",
        "Let everything bad stay in the old year, and may all your plans come true in the new one.",
    ),
    formal=(
        "I wish you good health, stability and continued success in the New Year.",
        "May the coming year be one of bright achievements and positive change for you.",
        "Thank you for our cooperation this year; I wish you prosperity in the next.",
    ),
    funny=(
        "May the New Year bring plenty of tangerines and very few extra pounds.",
        "May the holiday salads never run out and your salary grow faster than prices.",
        "May Santa finally read your letter all the way to the end.",
    ),
    romantic=(
        "I want to welcome this New Year and every one after it by your side.",
        "May the New Year be full of tenderness, magic and our shared dreams.",
        "When the clock strikes midnight, I will wish for just one thing — that we are always together.",
    ),
)

CHRISTMAS = occasion(
    ("Merry Christmas!", "Season's Greetings!", "Warm Christmas Wishes!"),
    "Merry Christmas", "for Christmas",
    warm=(
        "May this bright holiday fill your home with warmth, peace and joy.",
        "Wishing you quiet happiness, kind company and a true Christmas miracle.",
        "May faith, hope and love always live in your heart.",
    ),
    formal=(
        "I wish you peace, prosperity and harmony.",
        "May the Christmas season bring joy and tranquility to you and your loved ones.",
        "I wish you every success and fulfilled hopes in the coming year.",
    ),
    funny=(
        "May a Christmas miracle happen even to your to-do list.",
        "May the festive table delight you and the bathroom scales stay politely silent.",
        "May you get more presents than there are socks in your drawer.",
    ),
    romantic=(
        "My greatest Christmas miracle is you.",
        "May the magic of this season stay in our home all year long.",
        "I want to spend every Christmas holding your hand.",
    ),
)

MARCH_8 = occasion(
    ("Happy Women's Day!", "Happy International Women's Day!", "Happy Spring Holiday!"),
    "Happy International Women's Day", "on International Women's Day",
    warm=(
        "May spring bring you bright colours, smiles and a wonderful mood.",
        "Wishing you warmth, love and flowers not only today but every day.",
        "May your dreams come true and may you be surrounded by people who cherish you.",
    ),
    formal=(
        "I wish you a spring mood, harmony and success in everything you do.",
        "May every day bring you joy, inspiration and well-deserved recognition.",
        "I wish you good health, prosperity and the warmth of your loved ones.",
    ),
    funny=(
        "May the flowers come in armfuls and the dishes be washed by someone else.",
        "May your spring mood last longer than the holiday tulips.",
        "Wishing you so many compliments that you need a separate notebook for them.",
    ),
    romantic=(
        "You are more beautiful than any spring, and this day is just a reason to say it out loud.",
        "May your eyes always shine with happiness.",
        "Every day with you is a celebration for me.",
    ),
)

FEB_23 = occasion(
    ("Happy Defender of the Fatherland Day!", "Happy February 23rd!"),
    "Happy Defender of the Fatherland Day", "on Defender of the Fatherland Day",
    warm=(
        "Wishing you strength of spirit, good health and reliable people at your back.",
        "May your life hold more victories and more reasons to be proud.",
        "I wish you peace, self-confidence and loyal friends by your side.",
    ),
    formal=(
        "I wish you courage, resilience and success in all your undertakings.",
        "May your reliability and determination always lead you to new victories.",
        "I wish you peaceful skies, prosperity and good health.",
    ),
    funny=(
        "May this year's gift socks at least have a sense of humour.",
        "May the TV remote always be within reach.",
        "Wishing you strategic victories — from parking spots to arguments about the dishes.",
    ),
    romantic=(
        "With you I always feel calm and safe.",
        "You are my support and my closest person.",
        "May your life hold as much warmth as you give me.",
    ),
)

VALENTINE = occasion(
    ("Happy Valentine's Day!", "With Love on Valentine's Day!"),
    "Happy Valentine's Day", "on Valentine's Day",
    warm=(
        "May your life be full of love, tenderness and happiness.",
        "I wish your heart always to be warmed by the people close to you.",
        "May this day bring you pleasant surprises and kind words.",
    ),
    formal=(
        "I wish you warmth, understanding and harmony in your relationships.",
        "May you always be surrounded by people who value and support you.",
    ),
    funny=(
        "May Cupid aim well and the chocolate never run out.",
        "May you get more valentines than phone notifications.",
        "Love to you — like chocolate on a holiday: lots of it and no regrets.",
    ),
    romantic=(
        "You are my greatest love and my sweetest happiness.",
        "Every day with you feels like Valentine's Day.",
        "I want to hold your hand always and never let go.",
    ),
)

PROFESSIONAL_DAY = occasion(
    ("Happy Professional Holiday!",),
    "Happy professional holiday", "on your professional holiday",
    warm=(
        "May your work bring you joy and your success earn the recognition it deserves.",
        "May the work you love keep inspiring you and your colleagues always support you.",
        "Wishing you interesting challenges, great results and the appreciation you deserve.",
    ),
    formal=(
        "Thank you for your professionalism, responsibility and dedication.",
        "I wish you new professional achievements and the recognition of your colleagues.",
        "May your work always bring you satisfaction and well-deserved rewards.",
    ),
    funny=(
        "May your boss praise you more often and your reports write themselves.",
        "May your workdays fly by and your weekends last a little longer.",
        "Wishing you a salary so good it asks for a raise on its own.",
    ),
    romantic=(
        "I am so proud of what you do and how you do it.",
        "May your work inspire you, and may warmth and I always be waiting for you at home.",
    ),
)
