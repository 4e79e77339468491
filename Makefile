# supportlah — the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000

.PHONY: install install-voice demo demo-voice test bench eval lock clean

$(BIN)/supportlah: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

install: $(BIN)/supportlah  ## create .venv and install the project from pyproject.toml + constraints.txt

$(VENV)/.voice: $(BIN)/supportlah pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,voice]'
	@touch $@

install-voice: $(VENV)/.voice  ## add the optional `voice` extra: voice notes transcribed on this machine (README "Voice notes")

demo: install  ## ingest the sample knowledge base and serve the web chat (offline, no accounts)
	$(BIN)/supportlah demo --port $(PORT)

demo-voice: install-voice  ## the demo with local speech to text; first transcribes a clip espeak-ng speaks, if installed
	@if command -v espeak-ng >/dev/null 2>&1; then \
	  espeak-ng -w $(VENV)/voice-demo.wav "How much does a chemical wash cost?" && \
	  echo "supportlah transcribe $(VENV)/voice-demo.wav:" && $(BIN)/supportlah transcribe $(VENV)/voice-demo.wav; \
	fi
	$(BIN)/supportlah demo --port $(PORT)

test: install  ## the whole test suite (needs Postgres and Redis on 127.0.0.1; .ci/run starts them)
	$(BIN)/python -m pytest -q -n 4

bench: install  ## benchmarks: tables in bench/results/*.json and plots
	$(BIN)/python -m bench.run_all

eval: install  ## quality evaluations only (retrieval and answers); tables in bench/results/
	$(BIN)/python -m bench.quality

lock:  ## refresh constraints.txt from the current venv
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^supportlah' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
