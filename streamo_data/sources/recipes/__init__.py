"""One recipe per source annotation format, each turning the file as distributed into Event rows."""

from streamo_data.sources.recipes.activitynet import ActivityNetCaptions
from streamo_data.sources.recipes.base import Recipe, RecipeReport
from streamo_data.sources.recipes.catalogue import VideoCatalogue
from streamo_data.sources.recipes.charades_sta import CharadesSTA
from streamo_data.sources.recipes.coin import COIN
from streamo_data.sources.recipes.didemo import DiDeMo
from streamo_data.sources.recipes.et_instruct import ETInstruct
from streamo_data.sources.recipes.generic import GenericEvents
from streamo_data.sources.recipes.hacs import HACSSegments
from streamo_data.sources.recipes.llava_video import LLaVAVideoQA
from streamo_data.sources.recipes.queryd import QuerYD
from streamo_data.sources.recipes.qvhighlights import QVHighlights
from streamo_data.sources.recipes.run import run_recipe
from streamo_data.sources.recipes.streamo_release import StreamoRelease
from streamo_data.sources.recipes.tacos import TACoS
from streamo_data.sources.recipes.youcook2 import YouCook2

RECIPES: dict[str, type[Recipe]] = {
    recipe.name: recipe
    for recipe in (ActivityNetCaptions, CharadesSTA, QVHighlights, YouCook2, COIN, DiDeMo, ETInstruct, GenericEvents,
                   HACSSegments, TACoS, QuerYD, LLaVAVideoQA, StreamoRelease)
}

__all__ = ["RECIPES", "Recipe", "RecipeReport", "VideoCatalogue", "run_recipe"]
