"""Real text for the document tests: pages on different subjects, each holding facts that only it
states, and questions whose answers sit on a known page."""

from __future__ import annotations

PAGES = [
    "The Juniper Bakery was founded in 1931 by Marta Olsen in the harbour town of Kessel. She baked rye "
    "bread in a wood-fired brick oven that still stands in the back room. During the winter of 1947 the "
    "bakery fed the whole town when the roads were closed by snow for six weeks. Today the bakery is run "
    "by her great-grandson, who still uses her sourdough starter, which is kept in a clay jar.",
    "Glaciers form where more snow falls in winter than melts in summer. Over many years the snow is "
    "pressed into firn and then into dense blue ice. A glacier flows downhill under its own weight, "
    "often only a few centimetres a day. The Aletsch Glacier in the Swiss Alps is the longest in the "
    "Alps, about twenty-three kilometres long, and it has been retreating since the middle of the "
    "nineteenth century.",
    "Honeybees communicate the location of flowers through the waggle dance. A forager returning to "
    "the hive runs in a straight line while shaking her abdomen, then circles back and repeats. The "
    "angle of the run relative to vertical shows the direction of the food relative to the sun, and "
    "the length of the waggle tells the distance. Karl von Frisch received the Nobel Prize in 1973 for "
    "decoding this dance.",
    "The violin has four strings tuned in perfect fifths: G, D, A and E. Its body is usually made of "
    "spruce for the top and maple for the back, ribs and neck. Antonio Stradivari, working in Cremona "
    "in the late seventeenth and early eighteenth centuries, made around eleven hundred instruments, "
    "of which about six hundred and fifty survive. The bow is strung with horsehair rubbed with rosin.",
    "A lighthouse warns ships of dangerous coasts, reefs and harbour entrances. The Fresnel lens, "
    "invented by the French physicist Augustin-Jean Fresnel in 1822, concentrates the light of a "
    "small lamp into a beam visible more than twenty nautical miles away. Each lighthouse flashes in "
    "its own pattern, called its characteristic, so sailors can tell one light from another at night.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen. It takes place in "
    "the chloroplasts of plant cells, which hold the green pigment chlorophyll. The light reactions "
    "split water and release oxygen, while the Calvin cycle fixes carbon dioxide into sugars using "
    "the enzyme RuBisCO, probably the most abundant protein on Earth.",
    "The Silk Road was a network of trade routes linking China with the Mediterranean for more than "
    "fifteen hundred years. Caravans of camels carried silk, tea and porcelain westward and brought "
    "back glass, wool and silver. The city of Samarkand, in present-day Uzbekistan, grew rich as a "
    "crossroads of these routes. Paper making spread from China to the west along the same roads.",
    "Volcanoes erupt when molten rock called magma rises through cracks in the crust. Shield volcanoes "
    "such as Mauna Loa in Hawaii have gentle slopes built from runny basalt lava. Stratovolcanoes such "
    "as Mount Fuji are steep cones of alternating ash and lava layers. The 1883 eruption of Krakatoa "
    "was heard nearly five thousand kilometres away, the loudest sound in recorded history.",
    "Chess is played on a board of sixty-four squares. Each player starts with sixteen pieces: one "
    "king, one queen, two rooks, two bishops, two knights and eight pawns. A pawn that reaches the far "
    "rank is promoted, usually to a queen. Castling moves the king two squares towards a rook and "
    "places the rook on the square the king crossed.",
    "The human heart has four chambers: two atria and two ventricles. Blood returning from the body "
    "enters the right atrium, passes to the right ventricle and is pumped to the lungs. Oxygen-rich "
    "blood returns to the left atrium and the muscular left ventricle pumps it to the whole body. "
    "At rest an adult heart beats about seventy times a minute, more than one hundred thousand times a day.",
]

#: (question, the page that answers it, 1-based).
QUESTIONS = [
    ("Who started the bakery and in which year?", 1),
    ("How long is the Aletsch Glacier?", 2),
    ("How do bees tell each other where the flowers are?", 3),
    ("What wood is used for the top of a violin?", 4),
    ("Who invented the lens used in lighthouses?", 5),
    ("Which enzyme fixes carbon dioxide in plants?", 6),
    ("What goods did caravans carry along the Silk Road?", 7),
    ("How far away was the Krakatoa eruption heard?", 8),
    ("What happens to a pawn that reaches the last rank?", 9),
    ("How many times a day does the heart beat?", 10),
]
