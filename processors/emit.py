"""The worker's events, made by one emitter that names the worker ("processor") as their producer."""

from schemas.events import Emitter

emit = Emitter("processor")
