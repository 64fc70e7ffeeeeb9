"""Person names: from cues that are rarely wrong, and from name lexicons.

Two ways in, no NER model. (1) Where the copy itself says a name follows (a title, a
salutation, a sign-off, a "Ship to:" label, a review credit), the capitalised words
there. (2) Anywhere, a run of capitalised words that starts with a known given name
and goes on with one to three surname-like words ("… Luciano Cuzzocrea will call"):
given names and surnames from `compliance.pii.lexicon` (Census name files plus
European given names). A given name that is also a copy word ("May", "Rose", "Will")
needs a listed surname after it; a run that goes on into a product word ("the Olivia
Tote", "Stella Chelsea Boot") or follows "the"/"a" is a product, not a person.

A first name alone ("Hi Ann") is ordinary personalisation and is not flagged; catalog
names that look like people ("Dr. Martens", "Ted Baker") belong on the allow list.
Postal addresses are in `compliance.pii.addresses`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from compliance.pii.finding import Finding, PiiType
from compliance.pii.lexicon import (
    COLOUR_WORDS,
    COPY_WORDS,
    PRODUCT_WORDS,
    first_names,
    fold,
    surnames,
)


def _any_of(*cues: str, ignore_case: bool = False) -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, cues)), re.IGNORECASE if ignore_case else 0)


_UP = "A-ZÀ-ÖØ-ÞĀ-ž"  # Latin-1 and Latin Extended-A (Ł, Ś, Ž, …)
_LO = "a-zß-öø-ÿĀ-ž"
_WORD = re.compile(r"\S+")
_NAME = rf"(?:Mc|Mac|O['’]|D['’])?[{_UP}][{_LO}]+(?:-[{_UP}{_LO}][{_LO}]+)*"
_PARTICLE = r"(?:(?:van|von|de|da|del|della|der|den|di|du|la|le|ten|ter|dos|das)\s+){0,2}"
_NAMES = rf"{_NAME}\b(?:[ \t]+{_PARTICLE}{_NAME}\b){{0,2}}"

_TITLED = re.compile(
    rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Herr|Frau|Mme|Mlle|Sr|Sra)\.?[ \t]+({_NAMES})"
)
_GREETED = re.compile(
    rf"\b(?:Dear|Hi|Hello|Hey|Hallo|Liebe|Lieber|Bonjour|Hola|Ciao|Hej|Welcome back|Welcome|"
    rf"Happy birthday|Congratulations|Congrats|Good news|Great news|Sorry|Good morning|"
    rf"Good afternoon|Good evening|Sehr geehrte/r|Sehr geehrter|Sehr geehrte|Estimado|"
    rf"Estimada|Gentile|Caro|Cara|Beste)(?:[ \t]+to[ \t]+the[ \t]+\w+)?,?[ \t]+({_NAMES})"
)
_SIGNED = re.compile(
    rf"(?:\b(?:[Rr]egards|[Ss]incerely|[Bb]est wishes|Best|Cheers|Thanks|Thank you|Grüßen?|"
    rf"Gruß|Cordialement|Saludos|[Uu]n saludo|Atentamente|[Ss]aluti|Groet|Groeten|Yours|"
    rf"Many thanks|Warmly|Love)|^[ \t]*[—–][ \t]*|[!.?][ \t]+[—–][ \t]*),?\s+({_NAMES})"
)
# "Reviewed by", "Styled by", "Signed for by", "Designed in Lyon by": a credit.
_REVIEWED = re.compile(
    rf"\b(?:[A-Za-z]+ed(?:[ \t]+(?:for|in|with|out)(?:[ \t]+[{_UP}][{_LO}]+)?)?|[Ww]ritten|"
    rf"[Mm]ade|[Cc]hosen|[Ss]ent|[Ss]hared|[Pp]laced|[Hh]andpicked|[Hh]and-picked|"
    rf"[Tt]aken|[Ww]orn)[ \t]+by[ \t]+({_NAMES})"
)
# The subject of something only a person does ("Ann Lee added 3 items", "Ann Lee
# (Customer Care) replied", "Ann Lee will call you"), a vocative at the start of a
# sentence ("Ann Lee, your order …"), a name right after a quotation ("”Love it.” Ann Lee").
_ACTED = re.compile(
    rf"(?:^|(?<=[.!?:;·•|]))[ \t]*({_NAMES})(?:[ \t]+\([^()]{{1,40}}\))?[ \t]+"
    rf"(?:added|sent|shared|invited|replied|wrote|left|gave|bought|ordered|purchased|reviewed|"
    rf"recommends|recommended|liked|loved|loves|mentioned|asked|signed|says|said|thinks|"
    rf"will (?:call|contact|email|be in touch|get back)|is (?:waiting|looking)|"
    rf"(?:has|have) (?:sent|shared|added|invited|replied|asked))\b"
    rf"|(?:^|(?<=[.!?]))[ \t]*({_NAMES}),[ \t]+(?:your|you|you['’](?:re|ve|ll)|we|we['’](?:re|ve)|"
    rf"here|thanks|thank|welcome|happy|enjoy|don['’]t|it['’]s|this|there|good|great)\b"
    rf"|[”\"»][ \t]*[—–-]?[ \t]*({_NAMES})"
)
# "My name is Ann Lee", "I'm Ann Lee", "This is Ann Lee from …": an introduction.
_INTRODUCED = re.compile(rf"\b(?:[Mm]y name is|I['’]m|I am|This is)[ \t]+({_NAMES})")
# Social proof and reviews name the person before the cue.
_NAMED_BEFORE = re.compile(
    rf"(?<![\w'])({_NAMES})(?:,?[ \t]+(?:from|in)[ \t]+{_NAME}(?:[ \t-]+{_NAME}){{0,3}})?"
    rf"[ \t]+(?:just (?:bought|ordered|purchased|"
    rf"reviewed|grabbed)|from (?:our|the) (?:[a-z]+ )?(?:team|store|shop))\b"
    rf"|[—–-][ \t]*({_NAMES}),[ \t]+verified (?:buyer|customer|purchase)"
)
# A bare "to" introduces a person ("Send it to Ann Lee"), but after "shipping" a
# destination ("Now shipping to Sierra Leone").
_LABELLED = re.compile(
    rf"\b(?:[Nn]ame|[Ff]ull name|[Ss]hip to|[Dd]eliver to|[Rr]ecipient|Attn|[Aa]ttention|"
    rf"[Cc]ardholder|[Aa]ccount holder|[Bb]illed to|[Ss]old to|[Dd]irector|[Mm]anager|"
    rf"[Cc]ontact|[Ss]tylist|[Aa]gent|[Aa]dvisor|[Aa]dviser|[Oo]wner|[Ff]ounder|[Cc]EO|"
    rf"[Ss]igned for by|[Ff]or|[Ff]rom|(?<!shipping )(?<!ships )[Tt]o|[Ww]ith|[Aa]sked|[Mm]eet|"
    rf"[Cc]ourier|"
    rf"[Gg]eschäftsführer|[Gg]eschäftsführerin|[Aa]nsprechpartner|[Aa]nsprechpartnerin|"
    rf"[Aa]ddress|[Aa]dresse|[Ll]ieferadresse|[Dd]irección|[Ii]ndirizzo):?"
    rf"[ \t]+({_NAMES})"
)
# Capitalised words that follow a salutation in marketing copy but are not names.
# fmt: off
_NOT_NAMES = frozenset("""
Your You We Our Us The This That These Those Here There Thanks Thank Welcome New Shop
Sale Save Get Free Now Today Team Customer Customers Friend Friends Valued Shopper
Shoppers Member Members Subscriber Subscribers Everyone All Sir Madam Care Service
Support Summer Spring Autumn Fall Winter Black Friday Cyber Monday Tuesday Wednesday
Thursday Saturday Sunday January February March April June July August September
October November December Holiday Holidays Christmas Collection Edition Store Club
Rewards Insider Insiders Happy Birthday Order Please It Just Last Final Big Flash Don
Dont Check Meet Discover Explore Treat Enjoy Look Love Hello Hi Dear Again Back Kunde
Kundin Kunden Équipe Cliente Clientes Amigo Amiga Guest Guests And Or For With From
Style Beauty Home Kids Men Women Deals Offer Offers Weekend Mr Mrs Ms Miss Mx Dr Prof
Herr Frau Mme Mlle Sr Sra Only Someone Congratulations Congrats Sorry Good Great Best
Gift Message Picked Reviewed Styled Designed Made Signed Delivery Billing Account Invoice
""".split())  # noqa: SIM905
# fmt: on

# Each pattern with the words it needs (a cheap search before the full regex runs)
# and how many name words it takes to flag.
_PERSON_PATTERNS: tuple[tuple[re.Pattern[str], re.Pattern[str], int], ...] = (
    (_TITLED, _any_of("Mr", "Ms", "Miss", "Mx", "Dr", "Prof", "Herr", "Frau", "Mme", "Sr"), 1),
    (_GREETED, _any_of("Dear", "Hi", "Hello", "Hey", "Hallo", "Liebe", "Bonjour", "Hola",
                       "Ciao", "Hej", "Welcome", "Happy birthday", "Congrat", "news", "Sorry",
                       "Good ", "geehrte", "Estimad", "Gentile", "Car", "Beste"), 2),
    (_SIGNED, _any_of("egards", "incerely", "est wishes", "Best", "Cheers", "Thank", "Grü",
                      "Gruß", "Cordialement", "aludo", "Atentamente", "aluti", "Groet", "Yours",
                      "Warmly", "Love", "—", "–"), 2),
    (_LABELLED, _any_of("ame", "hip to", "eliver to", "ecipient", "Attn", "ttention",
                        "ardholder", "ccount holder", "illed to", "old to", "irector",
                        "anager", "ontact", "tylist", "gent", "dvis", "wner", "ounder", "CEO",
                        "by", "or", "rom", "to", "ith", "sked", "eet", "ourier", "führer",
                        "nsprechpartner", "dress", "irecci", "ndirizzo"), 2),
    (_REVIEWED, _any_of(" by "), 2),
    (_INTRODUCED, _any_of("name is", "I'm", "I’m", "I am", "This is"), 2),
    (_ACTED, re.compile(r"[a-z] [a-z]|, [a-z]|[”\"»]"), 2),
    (_NAMED_BEFORE, _any_of("just ", "from our", "from the", "verified"), 2),
)  # fmt: skip


def find_people(text: str) -> Iterator[Finding]:
    """Yield names after a title (Ms Lee), full names after a greeting, sign-off or label,
    or before a social-proof cue ("… just bought", "— Ann Lee, verified buyer"), and full
    names that start with a known given name anywhere."""
    yield from _lexicon_names(text)
    for pattern, cues, min_words in _PERSON_PATTERNS:
        if not cues.search(text):
            continue
        for m in pattern.finditer(text):
            group = m.lastindex or 1  # _NAMED_BEFORE has the name in group 1 or 2
            span = _name_span(m.group(group), m.start(group), min_words)
            if span and not _company_follows(text, span[1]):
                yield Finding(PiiType.PERSON, *span)


def _name_span(name: str, start: int, min_words: int) -> tuple[int, int] | None:
    words = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(name)]
    # "Dear Ann Lee Your order…": the name ends at the first word that is not a name.
    kept: list[tuple[int, int, str]] = []
    for word in words:
        if word[2] in _NOT_NAMES or not _may_continue_name(fold(word[2])):
            break
        kept.append(word)
    if len(kept) < len(words) and _is_company_or_product(fold(words[len(kept)][2])):
        return None  # "Nelson Ltd", "Harper Wallet"
    while kept and not kept[-1][2][0].isupper():
        kept.pop()  # never end on a particle ("Ann van")
    if sum(w[0].isupper() for _, _, w in kept) < min_words:
        return None
    return start + kept[0][0], start + kept[-1][1]


# -- names from the lexicons ---------------------------------------------------------

_TOKEN = re.compile(rf"(?<![\w'’@.-]){_NAME}(?![\w@-]|\.\w|['’][{_LO}]{{2,}})")
_PARTICLES = "van|von|de|da|del|della|der|den|di|du|la|le|ten|ter|dos|das|y|e|zu|af|av|op"
_GAP = re.compile(rf"[ \t]+(?:(?:{_PARTICLES})[ \t]+){{0,3}}")
_ARTICLE = re.compile(r"\b(?:[Tt]he|[Aa]n?|[Oo]ur|[Yy]our|[Tt]his|[Nn]ew)[ \t]+$")
_HARD_STOP = frozenset(fold(w) for w in _NOT_NAMES)
_STOP = COPY_WORDS | _HARD_STOP
# Legal forms: a run ending in one is a company ("Nelson Ltd", "Samuel Mate Palau S.A.").
_COMPANY = frozenset(
    [
        "ltd",
        "limited",
        "inc",
        "llc",
        "llp",
        "plc",
        "gmbh",
        "ag",
        "kg",
        "ohg",
        "ug",
        "co",
        "corp",
        "corporation",
        "company",
        "sa",
        "s.a",
        "sl",
        "s.l",
        "sarl",
        "sas",
        "spa",
        "s.p.a",
        "srl",
        "s.r.l",
        "bv",
        "b.v",
        "nv",
        "n.v",
        "ab",
        "oy",
        "as",
        "aps",
        "group",
        "holding",
        "holdings",
        "partners",
        "sons",
        "figli",
        "hermanos",
        "freres",
        "und",
        "and",
        "e",
        "et",
        "y",
    ]
)


def _may_continue_name(key: str) -> bool:
    """A surname position: not a hard stop word; a copy or product word only if a surname."""
    if key in _HARD_STOP or key in _COMPANY or key in PRODUCT_WORDS:
        return False
    if key in COPY_WORDS or key in COLOUR_WORDS:
        return key in surnames()
    return True


def _is_company_or_product(key: str) -> bool:
    return key.rstrip(".") in _COMPANY or key in PRODUCT_WORDS or key in COLOUR_WORDS


def _runs(text: str) -> Iterator[list[tuple[int, int, str]]]:
    """Runs of two or more capitalised words separated by blanks (and name particles)."""
    run: list[tuple[int, int, str]] = []
    for m in _TOKEN.finditer(text):
        if run and not _GAP.fullmatch(text, run[-1][1], m.start()):
            if len(run) > 1:
                yield run
            run = []
        run.append((m.start(), m.end(), m.group()))
    if len(run) > 1:
        yield run


def _is_given_name(key: str) -> bool:
    firsts = first_names()
    return all(part in firsts for part in key.split("-"))


def _lexicon_names(text: str) -> Iterator[Finding]:
    for run in _runs(text):
        keys = [fold(w) for _, _, w in run]
        i = 0
        while i < len(run) - 1:
            key = keys[i]
            if key in PRODUCT_WORDS or key in _HARD_STOP or not _is_given_name(key):
                i += 1
                continue
            j = i + 1  # surname words: up to three
            while j < len(run) and j - i <= 3 and _may_continue_name(keys[j]):
                j += 1
            if j == i + 1:
                i += 1
                continue
            if (j < len(run) and _is_company_or_product(keys[j])) or _ARTICLE.search(
                text, max(0, run[i][0] - 6), run[i][0]
            ):
                i = j  # "the Olivia Tote", "Stella Chelsea Boot", "Nelson Ltd": not a person
                continue
            if _company_follows(text, run[j - 1][1]) or _DAY_FOLLOWS.match(text, run[j - 1][1]):
                i = j  # "Nelson Ltd", "Martin Luther King Jr. Day": not a person
                continue
            while j > i + 1 and keys[j - 1] in _DAY_WORDS:
                j -= 1  # "Assumption of Mary Day": the day, not a Ms Day
            if j == i + 1:
                i += 1
                continue
            last = keys[j - 1]
            if key in _STOP and (
                last in _STOP
                or last in COLOUR_WORDS
                or not all(p in surnames() for p in last.split("-"))
            ):
                i += 1  # "May Sale", "Rose Gold": a copy word, no surname after it
                continue
            yield Finding(PiiType.PERSON, run[i][0], run[j - 1][1])
            i = j


# A name right before "Day" or "Holiday" names the day ("Columbus Day", "May Bank
# Holiday", "Martin Luther King Jr. Day"), not someone in the copy.
_DAY_WORDS = frozenset({"day", "holiday"})
_DAY_FOLLOWS = re.compile(r"(?:[ \t]+Jr)?\.?[ \t]+(?:Day|Holiday|Bank Holiday)\b")
_COMPANY_AFTER = re.compile(
    r"[ \t,]+(?:&|and|und|et|e|y)?[ \t]*(?:Ltd|Limited|Inc|LLC|LLP|PLC|plc|GmbH|AG|KG|Co\b|"
    r"Corp|S\.?A\.?|S\.?L\.?|SARL|SAS|S\.?p\.?A\.?|S\.?r\.?l\.?|s\.?r\.?l\.?|B\.?V\.?|"
    r"N\.?V\.?|AB|Oy|Group|e figli|e hijos|et fils|& (?:Sons|Co)|y asociados|e associati|"
    r"(?:&|and) (?:Associates|Partners))"
)


def _company_follows(text: str, end: int) -> bool:
    return bool(_COMPANY_AFTER.match(text, end))
