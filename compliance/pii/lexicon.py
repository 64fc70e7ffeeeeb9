"""Name lexicons and the capitalised words of shop copy that are not names.

First names and surnames: the US Census Bureau's 1990 name files as shipped by the
`names` package (MIT; 5,494 given names, 88,799 surnames, public-domain data), plus
given names common in the European countries the shop ships to, listed here from the
national statistics offices' popular-name tables. Nothing here comes from the
evaluation set's generator (Faker).

Words are compared case-folded and without accents ("Müller" -> "muller"), as the
Census files are upper-case ASCII.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib import resources

# fmt: off
_EUROPEAN_FIRST = """
aaron abel adam adrian adriana agata agnes agnieszka aidan aileen aine aisling alba albert
alberto albin alejandro aleksander aleksandra alessandra alessandro alessia alexandre
alexandra alfie alfonso alfredo alice alicia alina alison almudena alois amalia amelie
amelia anais anastasia andrea andreas andrei andres andrzej ane angela angelika angelo anja
anke ann anna annabel anne anneke anneliese annelies annette annika anton antonia antonio
antoine arnaud arne arthur astrid aurelie aurelio axel baptiste barbara bart bartosz bas
beata beatrice beatriz bastian benedikt benjamin benoit bernadette bernard bernardo bernd
bettina bianca birgit bjorn borja brendan bruno camille carina carla carlo carlos carmen
carolina caroline catalina caterina catherine cecile cecilia celine charlotte chiara
christian christiane christina christine christoph christophe ciara cian claire clara
claudia claudio clement colm conor constanze corinna cornelia cristian cristina dagmar
damian daniel daniela daniele danielle darius david davide dawid declan denis denise
diana diego dieter dirk dolores dominik dominika dominique donal dorota dorothea edith
edoardo eduard eduardo eileen elena eleonora elias elif elin elisa elisabeth elisabetta
elise ella ellen eloise elsa elske emeline emil emilia emilie emilio emily emma emmanuel
enrico enrique enzo eoin erik erika ernesto esra esteban estelle esther ethan eugenia eva
evelien ewa fabian fabienne fabio fabrizio federica federico felipe felix fernando filip
filippo fionn fiona florence florian francesca francesco francisco franck francois
franz franziska frederic frederik frida friedrich gabriel gabriela gabriele gabrielle
gaelle gareth gaspard gemma georg georges gerard gerhard gerrit gert gianluca gianni
gilles gina giorgia giorgio giovanna giovanni gisela giulia giulio giuseppe gonzalo
gosia grainne greta grzegorz guadalupe gudrun guido guillaume gunnar gunter gustav
hanna hannah hannes hans hanna harald hedwig heike heinrich heinz helena helene helga
henrik henri herbert hermann hilde hugo ignacio igor ilse ines ingrid ingo irene iris
irma isabel isabella isabelle isak ivan jacek jacopo jakob jakub jan jana janina janne
jaroslaw javier jean jeanne jens jeroen jesus joachim joanna joao joaquin jochen johan
johanna johannes jonas jordi jorge jorg jose josef josefa josefine joseph josephine
juan judith julia julian juliane julien julio juliette jurgen justyna kacper kai kamil
karin karl karolina kasper katarzyna katharina kathrin katrin kerstin kevin kilian klaus
konrad krzysztof kurt lara lars laura laurent laurence lea leandro lena leni leo leon
leonardo leonie liam lieke lina linnea lisa lorenzo lotte louis louise luca lucas lucia
luciano lucie ludovic ludwig luigi luis luisa lukas lukasz magdalena maja malgorzata
malte manon manuel manuela marc marcel marcello marcin marco marcos margarethe margot
mari maria mariana marianne marie marieke marina mario marion marius marko marta martha
martin martina mateo mateusz mathias mathieu matilde matteo matthias mattia maud maurice
maurizio max maxime maximilian mehmet melanie merel michael michaela michal michel
michele michiel miguel mikkel milan milena mirjam mohamed monika morgane moritz nadia
nadine natalia nathalie nicola nicolas nicole niels niamh nikola nils nina noah noemi
noor nora norbert oisin olaf ole oliver olivier olga oriol oscar oskar pablo paola
pascal pascale patricia patrick patrizia paul paula paulina pauline pawel pedro per
peter petra philipp philippe pierre piet pietro pilar piotr quentin rafael rafal raffaele
ralf ramon raphael raquel rebecca regina reinhard renata renate rene ricardo riccardo
richard rita robert roberta roberto rocio rodrigo roisin roland roman ronan rosa rosalia
ruben rudolf ruth sabine sabrina salvatore samuel sandra sara sarah sascha sebastian
sebastien sergio severin silke silvia simon simona simone sinead siobhan sofia sofie
solene sophie stefan stefanie stefano steffen stephane stephanie susanne sven svenja
sylvie szymon tamara tanja teresa thea theo theresa thierry thomas thorsten tiago tilman
tim timo tobias tomas tomasz tommaso torsten ulrich ulrike ursula uwe valentin valentina
valeria valerie vanessa veronica veronika vicente victor victoria vincent vincenzo
virginie vittoria walter werner wiebke wilhelm willem wim wojciech wolfgang xavier
yannick yasmin yusuf yvonne zofia zoe
ahmed ali amir fatima hamza hassan ibrahim karim khadija layla leila mariam mustafa
omar youssef yasmine zeynep emre burak ayse fatma can deniz
"""
# fmt: on

# Capitalised words that start or continue marketing copy and are not names, even
# where a name list holds them ("May", "Summer", "Rose", "Chase", "Will").
# fmt: off
_COPY_WORDS = """
a about add all also an and any april are as at august autumn away back bag be best big
birthday black blue book brand brands bring buy by call can cart case check chic
christmas classic click club code collection come coming cyber day days dear deal deals
december discover do don't done double easter edit edition enjoy even ever every
everyday exclusive explore extra fall fashion fast favourite favorite february final
find first flash for free fresh friday friend friends from fun get gift gifts go gold
good grab great guest happy has have hello help her here hey hi his holiday holidays
home hot how i if in inside is it its january join july june just last latest launch
let like limited live look looking looks love made make march may me meet member members
men merry mini monday more most mother mothers my new news next night no not now
november now october of off offer offers on one only or order orders our out outlet
over pack perfect pick picks please plus pre premium price prime pro rain ready real
red refer rewards sale save saturday say see sent september set shop shopping show sign
silver size sneak so special spring start starts stay still store style styles summer
sunday super sure take team thank thanks that the their them then there these they
this those thursday time to today top treat trending try tuesday up us valentine very
vip was we wednesday week weekend welcome what when where white who why will win winter
with women new year yes you your yours
mark grant bill chase hunter page hope joy faith grace will miles sterling crystal ruby
jade pearl ivory olive violet iris hazel holly ivy lily daisy poppy jasmine heather sage
ginger coral scarlett sky storm river ocean dawn eve star angel honey sugar candy cherry
berry brandy destiny harmony melody liberty justice royal prince king duke noble major
young long rich norm jack frank earl dean guy art sunny rusty sandy stone cliff dale
glen forest brook bay wood ford gene autumn amber rose
charlotte chelsea jordan madison victoria georgia carolina virginia dakota austin dallas
houston florence lincoln kent devon mercedes tiffany
"""
# Product and material words: a capitalised "name" right before one of these
# is a product ("the Olivia Tote", "Harper Leather Wallet").
_PRODUCT_WORDS = """
apron armchair backpack bag bags bandana basket bath bathrobe beanie bed bedding belt
bench bike bikini blanket blazer blender blouse board boat bodysuit bomber boot booties
boots bottle bowl box boxer bra bracelet brief briefs brush bucket cabinet cam camera
candle cap cardigan carpet case chair chino chinos clock clog clogs coat collar cooker
cover cream crew cup cushion dress dresses drone duffel duvet earring earrings earbuds
espadrille fleece frame fryer gilet glasses glove gloves gown headphones heel heels
hoodie jacket jackets jeans jersey jogger joggers jumper kettle kit knife lamp
laptop leggings lens lipstick loafer loafers mat mattress mixer monitor mug mule mules
necklace oil organizer oven pan pant pants parka perfume phone pillow planter plate
polo pot pouch pullover purse quilt rack raincoat ring robe rucksack rug runner runners
sandal sandals scarf serum set shades shampoo sheet sheets shelf shell shirt shirts
shoe shoes shorts skirt skillet slipper slippers sneaker sneakers soap sock socks sofa
speaker stool suit suitcase sunglasses sweater sweaters sweatshirt table tablet tank tee
tent throw tie tights toaster top tote towel tracksuit trainer trainers trench trouser
trousers trunk tshirt t-shirt tumbler tunic umbrella vase vest wallet watch weekender
windbreaker
cotton denim down fleece leather linen merino nylon cashmere canvas silk suede velvet
wool tweed corduroy jersey satin mohair alpaca bamboo ceramic glass steel titanium
oak walnut teak marble
"""
# Colours: also common surnames ("Brown", "Green"), so they end a name only when
# no surname list has them.
_COLOUR_WORDS = """
beige black blue brown burgundy camel charcoal cream emerald fuchsia green grey gray
indigo khaki lavender lilac maroon mint mustard navy nude orange peach pink plum purple
red rust sand slate tan taupe teal turquoise white yellow
"""
# fmt: on


def fold(word: str) -> str:
    """Case-folded, accents removed, apostrophes dropped: the lexicons' key for a word."""
    decomposed = unicodedata.normalize("NFKD", word.replace("ß", "ss").casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("'", "")


def _census(filename: str) -> set[str]:
    text = resources.files("names").joinpath(filename).read_text(encoding="ascii")
    return {line.split(None, 1)[0].lower() for line in text.splitlines() if line.strip()}


@cache
def first_names() -> frozenset[str]:
    """Given names (folded): Census 1990 male and female files plus European names."""
    names = _census("dist.male.first") | _census("dist.female.first")
    return frozenset(names | set(_EUROPEAN_FIRST.split()))


@cache
def surnames() -> frozenset[str]:
    """Surnames (folded) from the Census 1990 surname file."""
    return frozenset(_census("dist.all.last"))


COPY_WORDS: frozenset[str] = frozenset(_COPY_WORDS.split())
PRODUCT_WORDS: frozenset[str] = frozenset(_PRODUCT_WORDS.split())
COLOUR_WORDS: frozenset[str] = frozenset(_COLOUR_WORDS.split())
