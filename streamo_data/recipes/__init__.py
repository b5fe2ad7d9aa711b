"""One recipe per source annotation format, each turning the file as distributed into Event rows."""

from streamo_data.recipes.activitynet import ActivityNetCaptions
from streamo_data.recipes.base import Recipe, RecipeReport
from streamo_data.recipes.catalogue import VideoCatalogue
from streamo_data.recipes.charades_sta import CharadesSTA
from streamo_data.recipes.coin import COIN
from streamo_data.recipes.didemo import DiDeMo
from streamo_data.recipes.et_instruct import ETInstruct
from streamo_data.recipes.generic import GenericEvents
from streamo_data.recipes.hacs import HACSSegments
from streamo_data.recipes.llava_video import LLaVAVideoQA
from streamo_data.recipes.queryd import QuerYD
from streamo_data.recipes.qvhighlights import QVHighlights
from streamo_data.recipes.run import run_recipe
from streamo_data.recipes.streamo_release import StreamoRelease
from streamo_data.recipes.tacos import TACoS
from streamo_data.recipes.youcook2 import YouCook2

RECIPES: dict[str, type[Recipe]] = {
    recipe.name: recipe
    for recipe in (ActivityNetCaptions, CharadesSTA, QVHighlights, YouCook2, COIN, DiDeMo, ETInstruct, GenericEvents,
                   HACSSegments, TACoS, QuerYD, LLaVAVideoQA, StreamoRelease)
}

__all__ = ["RECIPES", "Recipe", "RecipeReport", "VideoCatalogue", "run_recipe"]
