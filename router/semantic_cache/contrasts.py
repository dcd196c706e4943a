"""Words that change an answer when one replaces the other. Pure data and a lookup.

Word embeddings place "largest" next to "smallest" and "numpy" next to "pandas" just
as they place "solve" next to "find": distributional similarity cannot tell an
opposite or a sibling from a synonym. So the cache's substitution guard
(`content.substitution`) treats a swapped word as a near miss only when this lexicon
says the two words contrast: opposite poles of one scale (large / small, first / last,
before / after, ascending / descending), different operations of one kind (sum /
product / average, create / delete, encode / decode), or different named things of one
kind (python / rust, list / dict, mysql / postgres). A swap it does not know is taken
as rewording ("remove" / "delete", "often" / "frequently", "compose" / "write").

Each line is one set (a line ending in " /" goes on to the next); poles are separated
by " / ", the forms of a pole by spaces. Two
words contrast when they are in different poles of one set. Written for Triskel from
general knowledge of English and of common software (no list copied); the lookup
stems words the way `content.content_words` does, so "descending" matches "descend".
"""

from __future__ import annotations

from collections.abc import Callable

_SCALES = """
large larger largest big bigger biggest huge / small smaller smallest little tiny
long longer longest / short shorter shortest
tall taller tallest high higher highest / low lower lowest
deep deeper deepest / shallow shallower shallowest
wide wider widest broad / narrow narrower narrowest
thick thicker thickest / thin thinner thinnest
heavy heavier heaviest / light lighter lightest
fast faster fastest quick quicker quickest / slow slower slowest
old older oldest elderly ancient / young younger youngest new newer newest modern
early earlier earliest / late later latest
hot hotter hottest warm warmer warmest / cold colder coldest cool cooler coolest
strong stronger strongest / weak weaker weakest
hard harder hardest difficult / easy easier easiest
rich richer richest wealthy / poor poorer poorest
good better best / bad worse worst
happy happier happiest joyful cheerful / sad sadder saddest unhappy gloomy
many more most / few fewer fewest less least
cheap cheaper cheapest / expensive pricey costly
safe safer safest / dangerous risky
loud louder loudest / quiet quieter quietest silent
dark darker darkest / bright brighter brightest
positive / negative
true / false
benefit benefits advantage advantages pro pros upside /
risk risks disadvantage disadvantages drawback drawbacks con cons downside harm
success successes / failure failures
friend friends ally / enemy enemies foe
win wins / lose loses loss losses
increase increasing rise rising grow growing /
decrease decreasing fall falling drop dropping shrink shrinking
"""

_ORDERS = """
first / last final
beginning begin begins start starts / end ends ending finish
before prior / after
above over / below under beneath
top / bottom
left / right
north northern / south southern
east eastern / west western
up upward / down downward
inside internal / outside external
front / back
ascending ascend / descending descend
increasing / decreasing
past / future
yesterday / today / tomorrow
morning / afternoon / evening / night
spring / summer / autumn fall / winter
monday / tuesday / wednesday / thursday / friday / saturday / sunday
january / february / march / april / may / june / july / august / september / october /
november / december
horizontal horizontally / vertical vertically
uppercase upper / lowercase lower
even / odd
singular / plural
male / female
minimum min minimize minimise / maximum max maximize maximise
"""

_OPERATIONS = """
sum total add addition / product multiply multiplication / average mean / median / mode /
difference subtract subtraction / quotient divide division
add insert append create make / remove delete drop destroy
open / close
start / stop
encode encoding / decode decoding
encrypt encryption / decrypt decryption
compress compression / decompress decompression extract
serialize serialise serialization / deserialize deserialise deserialization
import / export
upload / download
push / pull
send / receive
read / write
buy purchase / sell
lend / borrow
enable / disable
install / uninstall
include / exclude
merge / split
freeze / thaw melt
heat / cool
accept / reject decline
"""

_NAMED_THINGS = """
python / javascript / typescript / java / kotlin / scala / go golang / rust / ruby / php /
perl / swift / c++ cpp / c# csharp / haskell / lua / r / julia / matlab / bash / powershell /
sql / elixir / erlang / clojure / dart / fortran / cobol
list array / dict dictionary / tuple / set / string / integer int / float / map / queue /
stack / tree / graph / heap / hash
numpy / pandas / scipy / matplotlib / seaborn / sklearn / tensorflow / pytorch torch / keras /
django / flask / fastapi / requests / httpx
react / vue / angular / svelte / jquery / node nodejs / deno / express / nextjs / spring /
rails / laravel
mysql / postgres postgresql / sqlite / mongodb mongo / redis / cassandra / oracle /
elasticsearch / dynamodb
linux / windows / macos mac / android / ios / ubuntu / debian / fedora
aws amazon / azure / gcp google
docker / kubernetes / podman
git / svn / mercurial
chrome / firefox / safari / edge
csv / json / xml / yaml / toml / html / css / markdown / pdf
http / https / tcp / udp / ftp / ssh / websocket
mm millimeter millimeters millimetre millimetres /
cm centimeter centimeters centimetre centimetres / meter meters metre metres /
km kilometer kilometers kilometre kilometres / inch inches / foot feet ft / yard yards /
mile miles
mg milligram milligrams / gram grams / kg kilogram kilograms kilo kilos /
ton tons tonne tonnes / pound pounds lb lbs / ounce ounces oz
ml milliliter milliliters millilitre millilitres / liter liters litre litres / gallon gallons /
cup cups / tablespoon tablespoons tbsp / teaspoon teaspoons tsp
second seconds / minute minutes / hour hours / day days / week weeks / month months /
year years / decade decades / century centuries
celsius / fahrenheit / kelvin
dollar dollars usd / euro euros eur / pound sterling gbp / yen jpy / yuan rmb / rupee rupees
cat cats / dog dogs / horse horses / cow cows / bird birds / fish
apple apples / banana bananas / orange oranges / grape grapes / lemon lemons
circle / square / triangle / rectangle / sphere / cube / cylinder / cone
sine sin / cosine cos / tangent tan
mean / median / mode / variance / deviation
mercury / venus / earth / mars / jupiter / saturn / uranus / neptune / pluto
"""

_MORE_SIBLINGS = """
red / orange / yellow / green / blue / purple violet / pink / brown / black / white /
grey gray
sort / shuffle / filter / flatten / deduplicate / group / chunk / zip
split / join concatenate concat
commit / push / pull / merge / rebase / clone / stash / revert / reset / checkout / branch /
tag / fetch / cherry
get / post / put / patch / delete
select / insert / update / delete
inner / outer / cross
copy / move / rename
email / url / phone / date / ip / zip / digit / letter / whitespace / hex / password
derivative differentiate / integral integrate antiderivative / limit
prime / composite
factor / multiple
numerator / denominator
perimeter / area / volume / circumference / surface
radius / diameter
logarithm log / exponent exponential
gcd / lcm
permutation / combination
speed velocity / acceleration / force / energy / power / momentum / mass / weight
voltage / current / resistance
hydrogen / helium / oxygen / nitrogen / carbon / iron / gold / silver / copper / sodium /
potassium / calcium
cat cats kitten / dog dogs puppy / horse / cow / pig / sheep / goat / chicken / duck /
rabbit / mouse / rat / lion / tiger / bear / wolf / fox / elephant / giraffe / monkey /
snake / frog / shark / whale / dolphin / eagle / owl / bee / ant / spider / butterfly
beef / pork / chicken / fish / lamb / tofu
rice / pasta / bread / potato / noodle
tomato / onion / garlic / carrot / broccoli / spinach / pepper / cucumber / mushroom
cheese / egg / milk / butter / yogurt
coffee / tea / wine / beer / juice / water
breakfast / lunch / dinner / snack / dessert
head / arm / leg / hand / heart / lung / liver / kidney / brain / stomach / skin / eye /
ear / nose / mouth / tooth teeth / knee / neck / shoulder
mother mom mum / father dad / brother / sister / son / daughter / grandmother grandma /
grandfather grandpa / uncle / aunt / cousin / husband / wife / boyfriend / girlfriend
doctor / nurse / teacher / lawyer / engineer / programmer developer / designer / accountant /
chef / pilot / farmer / scientist
football soccer / basketball / tennis / golf / baseball / hockey / cricket / rugby /
volleyball / swimming / cycling / yoga / chess
piano / guitar / violin / drum drums / flute / trumpet / cello / saxophone
poem poetry / story tale / essay / song / letter / haiku / limerick / sonnet / novel / joke /
speech / tweet / review / riddle
rain rainy / snow snowy / sunny / wind windy / storm stormy / fog foggy / cloud cloudy
happy joyful cheerful / sad unhappy / angry / afraid scared fearful / calm / excited /
bored / lonely
formal / informal casual
funny humorous / serious
polite / rude
vim / emacs / vscode / nano
pip / conda / npm / yarn / cargo / poetry / maven / gradle / apt / brew homebrew
png / jpg jpeg / gif / svg / webp / bmp
mp3 / wav / flac / ogg
binary / decimal / hexadecimal / octal
camelcase / snakecase / kebabcase
push / pop / enqueue / dequeue / peek
car / bus / train / plane airplane flight / bike bicycle / boat ship / taxi / subway metro
process / thread / coroutine
mutex / semaphore
synchronous sync / asynchronous async
compile compiler / interpret interpreter
frontend / backend
client / server
public / private / protected
stdout / stderr / stdin
cpu / gpu / tpu
ipv4 / ipv6
"""


def _build(stem: Callable[[str], str]) -> dict[str, frozenset[tuple[int, int]]]:
    """Each stemmed form → the (set, pole) places it holds (a word may be in several
    sets: "mean" is an operation and a statistic)."""
    places: dict[str, set[tuple[int, int]]] = {}
    text = "\n".join(
        block.strip() for block in (_SCALES, _ORDERS, _OPERATIONS, _NAMED_THINGS, _MORE_SIBLINGS)
    )
    lines = text.replace(" /\n", " / ").splitlines()
    for set_index, line in enumerate(lines):
        for pole_index, pole in enumerate(line.split(" / ")):
            for form in pole.split():
                places.setdefault(stem(form.casefold()), set()).add((set_index, pole_index))
    return {word: frozenset(held) for word, held in places.items()}


class ContrastLexicon:
    """`contrast(a, b)`: whether the two (stemmed) words sit on different poles of one
    set and on no common pole."""

    def __init__(self, stem: Callable[[str], str]) -> None:
        self._places = _build(stem)

    def contrast(self, a: str, b: str) -> bool:
        places_a = self._places.get(a)
        places_b = self._places.get(b)
        if not places_a or not places_b or places_a & places_b:
            return False
        sets_b = {set_index for set_index, _ in places_b}
        return any(set_index in sets_b for set_index, _ in places_a)
