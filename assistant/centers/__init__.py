"""The cited directory of technology-transfer organizations and "which center fits my goal?".

* `model`: the data model (Fact, Center, Region; quotes are `assistant.types.Quote`), the field schema, `DirectoryError`.
* `directory`: `Directory`, the checked organizations with the corpus's geography and concepts.
* `load`: `centers.yaml` → pydantic-validated entries → `Directory`, every quote checked
  verbatim against its document (`load_directory`, `directory_from_documents`).
* `places`: the geography of `places.yaml` (`load_geography`, `Geography.find_places`).
* `concepts`: the sector concepts of `concepts.yaml` (`load_concepts`, `Concepts.goal_concepts`).
* `scoring`, `reasons`, `recommend`: the ranking, its cited reasons and notes, `recommend()`.
* `chat`: routing and rendering for the chat (`looks_like_recommendation`, `recommendation_answer`).
* `cache`: `DirectoryCache`, the directory of an assistant's indexed documents.
* `datafile`: reading and validating the YAML data files, cached per file.

Facts about organizations come only from `centers.yaml`; the geography and the sector
vocabulary are general knowledge used for matching and are never shown as facts.
"""
