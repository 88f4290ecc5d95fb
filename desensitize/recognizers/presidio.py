"""The recognizers as presidio ``PatternRecognizer``s in a ``RecognizerRegistry``, and an offline analyzer.

Why lazily: presidio itself (with spaCy and torch behind it) takes about two seconds to import, so
the presidio classes are created on first use (``recognizer_classes``; the package exposes them
through PEP 562 ``__getattr__``): the column profiler and the scanner import the recognizers without
paying for presidio.

presidio must run offline: ``build_analyzer`` uses presidio's no-op NLP engine (no spaCy model to
download).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from desensitize.recognizers.dataset_names import dataset_names_spec
from desensitize.recognizers.entities import RECOGNIZER_SPECS
from desensitize.recognizers.spec import RecognizerSpec
from desensitize.recognizers.text import LANGUAGE, PATTERN_FLAGS, normalize_text

__all__ = ["OFFLINE_NLP", "PRESIDIO_EXPORTS", "build_analyzer", "build_registry", "recognizer_classes"]

#: The class names ``recognizer_classes`` creates.
PRESIDIO_EXPORTS = ("ChinesePatternRecognizer", *(spec.name for spec in RECOGNIZER_SPECS), "DatasetNameRecognizer")


def _analyze(recognizer: Any, text: str, flags: int | None) -> list[Any]:
    """presidio's ``PatternRecognizer.analyze`` with the two changes the Chinese patterns need: the
    text is normalised first (full-width digits), and a pattern's group ``e``, when present, is the
    entity, so a context word can be part of the pattern without becoming part of the span."""
    import regex
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    text = normalize_text(text)
    results = []
    for pattern in recognizer.patterns:
        if not pattern.compiled_regex or pattern.compiled_with_flags != flags:
            pattern.compiled_with_flags = flags
            pattern.compiled_regex = regex.compile(pattern.regex, flags=flags)
        grouped = "e" in pattern.compiled_regex.groupindex
        for match in pattern.compiled_regex.finditer(text):
            start, end = match.span("e") if grouped else match.span()
            if start < 0 or start == end:
                continue
            validation = recognizer.validate_result(text[start:end])
            if validation is False:
                continue
            score = EntityRecognizer.MAX_SCORE if validation else pattern.score
            explanation = recognizer.build_regex_explanation(
                recognizer.name, pattern.name, pattern.regex, pattern.score, validation, flags
            )
            explanation.score = score
            results.append(
                RecognizerResult(
                    entity_type=recognizer.supported_entities[0],
                    start=start,
                    end=end,
                    score=score,
                    analysis_explanation=explanation,
                    recognition_metadata={
                        RecognizerResult.RECOGNIZER_NAME_KEY: recognizer.name,
                        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id,
                    },
                )
            )
    return list(EntityRecognizer.remove_duplicates(results))


def _pattern_recognizer_class() -> type:
    from presidio_analyzer import Pattern, PatternRecognizer

    class ChinesePatternRecognizer(PatternRecognizer):
        """A presidio ``PatternRecognizer`` over a ``RecognizerSpec`` (``analyze``: see ``_analyze``)."""

        SPEC: RecognizerSpec

        def __init__(self, spec: RecognizerSpec | None = None) -> None:
            spec = spec or self.SPEC
            self.spec = spec
            super().__init__(
                supported_entity=spec.entity_type,
                name=spec.name,
                supported_language=LANGUAGE,
                patterns=[Pattern(p.name, p.regex, p.score) for p in spec.patterns],
                context=list(spec.context),
                global_regex_flags=PATTERN_FLAGS,
            )

        def validate_result(self, pattern_text: str) -> bool | None:
            return None if self.spec.validator is None else self.spec.validator(pattern_text)

        def analyze(
            self, text: str, entities: list[str], nlp_artifacts: Any = None, regex_flags: int | None = None
        ) -> list[Any]:
            return _analyze(self, text, regex_flags or self.global_regex_flags)

    return ChinesePatternRecognizer


@functools.cache
def recognizer_classes() -> dict[str, type]:
    """The presidio recognizer classes, created on first use (importing presidio costs ~2 s)."""
    base: Any = _pattern_recognizer_class()
    classes: dict[str, type] = {"ChinesePatternRecognizer": base}
    for spec in RECOGNIZER_SPECS:
        classes[spec.name] = type(spec.name, (base,), {"SPEC": spec, "__doc__": spec.name})

    class DatasetNameRecognizer(base):  # type: ignore[misc]
        """PERSON: exact matches of the names found in the dataset's own name columns."""

        def __init__(self, names: Iterable[str]) -> None:
            spec = dataset_names_spec(names)
            if spec is None:
                raise ValueError("DatasetNameRecognizer needs at least one name of two or more characters")
            super().__init__(spec)

    classes["DatasetNameRecognizer"] = DatasetNameRecognizer
    return classes


def build_registry(names: Iterable[str] = ()) -> Any:
    """A presidio ``RecognizerRegistry`` for Chinese (``zh``) holding every recognizer defined here,
    plus the dataset-name recognizer when ``names`` are given."""
    from presidio_analyzer import RecognizerRegistry

    classes = recognizer_classes()
    recognizers = [classes[spec.name]() for spec in RECOGNIZER_SPECS]
    if dataset_names_spec(names) is not None:
        recognizers.append(classes["DatasetNameRecognizer"](names))
    return RecognizerRegistry(recognizers=recognizers, supported_languages=[LANGUAGE])


#: The default NLP configuration: no model at all, so presidio runs offline on the patterns alone.
OFFLINE_NLP = {"nlp_engine_name": "no_op", "models": [{"lang_code": LANGUAGE, "model_name": "no_op"}]}


def build_analyzer(names: Iterable[str] = (), nlp_configuration: dict[str, Any] | None = None) -> Any:
    """A presidio ``AnalyzerEngine`` that runs offline: the no-op NLP engine needs no spaCy model.

    (A plain ``AnalyzerEngine()`` tries to download ``en_core_web_lg``, which these machines cannot.)
    An installation with a Chinese spaCy model passes e.g. ``{"nlp_engine_name": "spacy", "models":
    [{"lang_code": "zh", "model_name": "zh_core_web_sm"}]}``: the same recognizers then get presidio's
    token-based context enhancement and its NER (README, "Desensitization").
    """
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(nlp_configuration=nlp_configuration or OFFLINE_NLP)
    return AnalyzerEngine(
        registry=build_registry(names), nlp_engine=provider.create_engine(), supported_languages=[LANGUAGE]
    )
