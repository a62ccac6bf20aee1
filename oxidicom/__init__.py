"""oxidicom: a DICOM C-STORE receiver for ChRIS (CUBE).

One package per layer; a module may import the packages below its own (the
``layers`` contract in pyproject.toml, checked by ``make test``)::

    app/        settings, start-up and drain, workers, command line (nothing imports it)
    aio/        the asyncio shell: listening socket, one protocol per connection, TLS
    scp/        the Storage SCP: access, negotiation, the association, what it shares
    notify/     LONK progress over NATS; registrations: journal, outbox, AMQP/Celery
    telemetry/  logs, traces, metrics
    storage/    CUBE's layout, the streaming writer, the per-association series tally
    dicom/      UIDs, Part-10 meta, the data set head parser
    dimse/      PS3.7 command sets, the message assembler, the one status table
    ul/         the sans-IO PS3.8 Upper Layer: PDUs, state machine, connection
    support/    small helpers that import nothing of oxidicom
"""

__all__: list[str] = []
