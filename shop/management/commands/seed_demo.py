"""Make a demo catalog: categories, products with realistic names, prices, stock and images.

Repeatable (the same --seed gives the same catalog, product by product, whatever --products is)
and idempotent (products are keyed by slug; a second run adds only what is missing). With
--if-empty it seeds only a catalog without products (`make stack`: a fresh clone gets the demo
store, a database with a catalog of its own is left alone). Images are
drawn locally with Pillow, two per kind of product (mug, lamp, ...), and shared by its products.
"""

import random
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.text import slugify
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from shop.models import Category, Product

CATEGORIES = {
    "Kitchen": (["Mug", "Teapot", "Bowl", "Cutting Board", "Chef Knife", "Colander", "Jar"], (196, 98, 45)),
    "Home": (["Cushion", "Throw", "Vase", "Candle", "Lamp", "Clock", "Mirror"], (74, 111, 165)),
    "Garden": (["Planter", "Trowel", "Watering Can", "Bird Feeder", "Pruner", "Hose"], (76, 140, 74)),
    "Stationery": (["Notebook", "Pen", "Pencil Case", "Desk Tray", "Planner", "Sketchbook"], (137, 87, 161)),
    "Outdoor": (["Backpack", "Water Bottle", "Tent", "Headlamp", "Camp Chair", "Thermos"], (48, 128, 128)),
    "Bath": (["Towel", "Soap Dish", "Bath Mat", "Toothbrush Cup", "Robe", "Sponge"], (58, 150, 190)),
    "Toys": (["Puzzle", "Kite", "Yo-Yo", "Building Blocks", "Spinning Top", "Marbles"], (214, 69, 80)),
    "Tea & Coffee": (["Pour-Over Set", "Tea Tin", "Grinder", "French Press", "Tea Strainer"], (120, 84, 60)),
}
ADJECTIVES = ["Classic", "Nordic", "Rustic", "Compact", "Everyday", "Handmade", "Vintage", "Modern",
              "Sturdy", "Light", "Deluxe", "Simple", "Coastal", "Urban", "Alpine", "Heritage"]
MATERIALS = ["Oak", "Ceramic", "Linen", "Steel", "Bamboo", "Glass", "Cotton", "Copper", "Wool",
             "Stoneware", "Walnut", "Recycled"]
COLOURS = ["Sand", "Slate", "Moss", "Ochre", "Ink", "Clay", "Fog", "Rust", "Sage", "Charcoal"]
SENTENCES = [
    "Made to be used every day and to last for years.",
    "Designed in small batches by an independent workshop.",
    "Finished by hand, so no two are quite alike.",
    "Easy to clean and kind to the planet.",
    "A thoughtful gift that people actually use.",
    "Packed plastic-free and shipped within two working days.",
    "Pairs well with the rest of the {category} range.",
    "Tested in our own homes before it reached the shop.",
]
IMAGES_PER_KIND = 2
BATCH = 1000


class Command(BaseCommand):
    help = "Create a repeatable demo catalog (idempotent: run it as often as you like)."

    def add_arguments(self, parser):
        parser.add_argument("--products", type=int, default=200, help="how many products (default 200)")
        parser.add_argument("--seed", type=int, default=42, help="the same seed gives the same catalog")
        parser.add_argument("--if-empty", action="store_true", help="do nothing if there is any product")

    def handle(self, *args, products, seed, if_empty, **options):
        if products < 0:
            raise CommandError("--products must be 0 or more.")
        if if_empty and Product.objects.exists():
            self.stdout.write(f"The catalog has {Product.objects.count()} products already: nothing seeded.")
            return
        categories = self._categories()
        images = self._images(seed)
        existing = set(Product.objects.values_list("slug", flat=True))
        created = 0
        with tqdm(total=products, desc="products", unit="", disable=options["verbosity"] == 0) as bar:
            for start in range(0, products, BATCH):
                batch = [_product(seed, i, categories, images) for i in range(start, min(start + BATCH, products))]
                new = [p for p in batch if p.slug not in existing]
                with transaction.atomic():
                    Product.objects.bulk_create(new, ignore_conflicts=True)
                created += len(new)
                bar.update(len(batch))
        self.stdout.write(f"{created} products created, {products - created} already there; "
                          f"{Product.objects.count()} products in {len(categories)} categories.")

    def _categories(self):
        categories = []
        for name in CATEGORIES:
            category, _ = Category.objects.get_or_create(
                slug=slugify(name),
                defaults={"name": name, "description": f"Everything for {name.lower()}, chosen with care."},
            )
            categories.append(category)
        return categories

    def _images(self, seed):
        """Draw each product kind's pictures once; return {noun: [media paths]}."""
        folder = Path(settings.MEDIA_ROOT) / "products"
        folder.mkdir(parents=True, exist_ok=True)
        images = {}
        for nouns, colour in CATEGORIES.values():
            for noun in nouns:
                images[noun] = []
                for variant in range(IMAGES_PER_KIND):
                    relative = f"products/demo-{slugify(noun)}-{variant}.png"
                    if not (folder.parent / relative).exists():
                        _draw(folder.parent / relative, noun, colour, random.Random(f"{seed}-{noun}-{variant}"))
                    images[noun].append(relative)
        return images


def _product(seed, index, categories, images):
    """Build product number `index`; it depends only on the seed and the index."""
    rng = random.Random(f"{seed}-{index}")
    category = categories[index % len(categories)]
    nouns = CATEGORIES[category.name][0]
    noun = rng.choice(nouns)
    name = f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {noun}"
    colour = rng.choice(COLOURS)
    sentences = rng.sample(SENTENCES, 3)
    description = f"The {name.lower()}, in {colour.lower()}. " + " ".join(sentences).format(
        category=category.name.lower()
    )
    price = Decimal(rng.randint(4, 249)) + Decimal(rng.choice(["0.49", "0.95", "0.99"]))
    return Product(
        category=category,
        name=f"{name}, {colour}",
        slug=f"{slugify(name)}-{slugify(colour)}-{index + 1}",
        description=description,
        price=price,
        stock=0 if rng.random() < 0.05 else rng.randint(1, 60),
        image=rng.choice(images[noun]),
        is_active=True,
        is_featured=index % 37 == 0,
    )


def _draw(path, noun, colour, rng):
    """Draw a simple product picture: a tinted background, a shape, the product's name."""
    size = 480
    image = Image.new("RGB", (size, size), tuple(min(255, c + 150) for c in colour))
    draw = ImageDraw.Draw(image)
    inset = rng.randint(70, 110)
    box = (inset, inset, size - inset, size - inset - 40)
    shape = rng.choice(["ellipse", "rounded_rectangle"])
    if shape == "ellipse":
        draw.ellipse(box, fill=colour)
    else:
        draw.rounded_rectangle(box, radius=40, fill=colour)
    font = ImageFont.load_default(size=34)
    text_width = draw.textlength(noun, font=font)
    draw.text(((size - text_width) / 2, size - 80), noun, fill=(40, 40, 40), font=font)
    image.save(path, optimize=True)
