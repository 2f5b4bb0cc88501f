"""The testing service's use cases: what a route calls, between parsing a request and presenting the answer.

Commands run in one unit of work each (``juwei.unit_of_work``; batches of tubes load and append many
aggregates at once). ``keys`` says where a key may act (a volunteer's point, a household's own household),
``clock`` what time it is in the compound. One module per area of the work: ``points``, ``rounds``,
``samples`` (tubes and uploads), ``results`` (a tube's, a plate's, a resident's), ``antigen`` (self-reports),
``coverage`` (who has not been tested), ``cases`` (and disinfection).
"""
