# specforge-k8s — every target documents itself: `make help`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# One stamp per dependency set, so editing pyproject.toml or constraints.txt reinstalls and nothing else does.
DEPS_STAMP := $(VENV)/.deps-$(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)
export PIP_CACHE_DIR ?= $(HOME)/.cache/pip
PYTEST_ARGS ?=
CHART_DIR := charts/specforge-operator
IMAGE_REPO ?= ghcr.io/specforge-k8s
IMAGE_TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(DEPS_STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --constraint constraints.txt -e '.[operator,trainer,dev]'
	@rm -f $(VENV)/.deps-* && touch $@

.PHONY: deps
deps: $(DEPS_STAMP) ## Create the virtualenv and install the Python dependencies

.PHONY: constraints
constraints: ## Re-pin constraints.txt from a fresh resolve of pyproject.toml (the venv and images install it)
	rm -rf $(VENV)-pin && $(PYTHON) -m venv $(VENV)-pin
	$(VENV)-pin/bin/pip install -q '.[operator,trainer,dev]'
	{ sed -n '1,2p' constraints.txt; $(VENV)-pin/bin/pip freeze --all --exclude specforge-k8s | grep -v '^\(pip\|setuptools\|wheel\)=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf $(VENV)-pin

.PHONY: system-deps
system-deps: ## Install the system packages tests need (redis-server, containerd, buildah, debootstrap...)
	hack/install-system-deps.sh

.PHONY: demo
demo: deps ## Main job: a draft for SmolLM2-135M-Instruct, measured by real speculative decoding on held-out prompts
	$(BIN)/specforge run examples/smollm2.yaml

.PHONY: test
# The three slow preparations overlap (pip downloads, the Go build, buildah's image builds): on a cold
# machine that is most of the wall time. So the tests run in two lanes that each start as soon as what
# they need is there: the local lane (unit and integration: the virtualenv and redis-server) once the
# deps are installed, the cluster lane (e2e and helm: the API server, the real node) once the binaries
# are built too, its real-pod tests last (their fixture waits for the image build, then imports). Each
# lane's output goes to a log (the builds' output interleaves otherwise) and its exit status to a file,
# so one failing lane stops no build and no other lane. Every preparation and test is timed
# (build/timings/), and the run ends with where the time went. Exit 5 is pytest's "no test selected":
# PYTEST_ARGS may select tests of one lane only.
TIMINGS_DIR := $(CURDIR)/build/timings
CLUSTER_LANE := e2e or binaries
test: ## Run every test layer: unit, integration (real Redis), e2e (real API server, real pods)
	@rm -rf $(TIMINGS_DIR) && mkdir -p $(TIMINGS_DIR) && date +%s >$(TIMINGS_DIR)/wall
	SPECFORGE_TIMINGS_DIR=$(TIMINGS_DIR) hack/timed.sh system-deps $(MAKE) --no-print-directory system-deps
	SPECFORGE_TIMINGS_DIR=$(TIMINGS_DIR) $(MAKE) -j5 --no-print-directory \
		timed-deps timed-cluster-binaries timed-images-build test-lane-local test-lane-cluster; \
		status=$$?; python3 hack/test_timings.py $(TIMINGS_DIR); \
		for lane in local cluster; do \
			echo "$$lane lane: exit $$(cat $(TIMINGS_DIR)/$$lane-lane.status 2>/dev/null || echo 'not run')" \
				"(log build/timings/$$lane-lane.log)"; done; \
		[ $$status = 0 ] && [[ $$(cat $(TIMINGS_DIR)/local-lane.status) =~ ^[05]$$ ]] \
			&& [[ $$(cat $(TIMINGS_DIR)/cluster-lane.status) =~ ^[05]$$ ]]

# test-lane-NAME: one pytest session of `make test` (see above), logged, its status kept.
LANE_PYTEST = SPECFORGE_TIMINGS_DIR=$(TIMINGS_DIR) SPECFORGE_REQUIRE_REAL_NODE=$${SPECFORGE_REQUIRE_REAL_NODE:-1} \
	$(BIN)/pytest -m "$(2)" $(PYTEST_ARGS) >$(TIMINGS_DIR)/$(1)-lane.log 2>&1; \
	echo $$? >$(TIMINGS_DIR)/$(1)-lane.status; \
	echo "==> $(1) lane: exit $$(cat $(TIMINGS_DIR)/$(1)-lane.status)"; tail -n 15 $(TIMINGS_DIR)/$(1)-lane.log

.PHONY: test-lane-local test-lane-cluster
test-lane-local: timed-deps
	@echo "==> local lane (unit, integration): running beside the builds (log $(TIMINGS_DIR)/local-lane.log)"
	@$(call LANE_PYTEST,local,not ($(CLUSTER_LANE)))
test-lane-cluster: timed-deps timed-cluster-binaries
	@echo "==> cluster lane (e2e, helm, real pods): running beside the image build (log $(TIMINGS_DIR)/cluster-lane.log)"
	@$(call LANE_PYTEST,cluster,$(CLUSTER_LANE))

# timed-TARGET: make TARGET, recording its wall time for `make test`'s summary.
timed-%:
	@hack/timed.sh $* $(MAKE) --no-print-directory $*

.PHONY: test-cold
test-cold: ## `make test` from nothing: a fresh clone of HEAD with an empty HOME (no pip, Go, image or venv cache)
	hack/test-cold.sh

.PHONY: test-fast
test-fast: deps ## Run the fast layer only (pure logic, no services, no slow training)
	$(BIN)/pytest -m "not slow and not integration and not e2e" $(PYTEST_ARGS)

.PHONY: test-random
test-random: deps ## The fast layer in random order (pytest-randomly, a new seed each run) on 2 xdist workers
	$(BIN)/pytest -m "not slow and not integration and not e2e" -p randomly -n 2 $(PYTEST_ARGS)

# mutmut names a mutant after its file's path, so it runs in a copy of the tree with the three packages at its
# top level; what it mutates and which tests it runs is [tool.mutmut] in pyproject.toml.
MUTATION_DIR := build/mutation
MUTMUT_ARGS ?= --max-children 2

.PHONY: mutation
mutation: deps ## Mutation testing (mutmut, fast layer) of policies/, render/, control_plane/, features/streaming (not in `make test`)
	rm -rf $(MUTATION_DIR) && mkdir -p $(MUTATION_DIR)
	cp -R api/specforge_api operator/specforge_operator trainer/specforge_trainer tests examples crds pyproject.toml $(MUTATION_DIR)/
	find $(MUTATION_DIR) -name __pycache__ -prune -exec rm -rf {} +
	cd $(MUTATION_DIR) && nice $(CURDIR)/$(BIN)/mutmut run $(MUTMUT_ARGS)
	cd $(MUTATION_DIR) && $(CURDIR)/$(BIN)/mutmut export-cicd-stats && cat mutants/mutmut-cicd-stats.json && echo
	@echo "survivors: cd $(MUTATION_DIR) && $(CURDIR)/$(BIN)/mutmut results; one of them: mutmut show NAME"

.PHONY: lint
lint: deps ## ruff, import layering (import-linter), mypy, hadolint and the shell pipeline lint
	python3 hack/lint_pipelines.py
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile
	$(BIN)/mypy api/specforge_api operator/specforge_operator trainer/specforge_trainer

.PHONY: bench
bench: deps system-deps ## Run the benchmarks under bench/ (prints ratios measured side by side)
	$(BIN)/python bench/control_plane.py
	$(BIN)/python bench/train_step.py
	$(BIN)/python bench/disagg.py

.PHONY: cluster-binaries
cluster-binaries: ## Build (or reuse from ~/.cache) the local Kubernetes control-plane binaries
	@if [ -x hack/build-binaries.sh ]; then hack/build-binaries.sh; else echo "hack/build-binaries.sh not present yet"; fi

.PHONY: cluster-up
cluster-up: cluster-binaries ## Start the local control plane (etcd, apiserver, KWOK GPU nodes, training-operator, JobSet); idempotent
	@hack/cluster.sh up

.PHONY: operator-install
operator-install: cluster-binaries ## helm install the operator chart (image from `make images`) into $$KUBECONFIG's cluster
	hack/operator-install.sh

.PHONY: operator-uninstall
operator-uninstall: cluster-binaries ## helm uninstall the operator chart
	hack/operator-install.sh --uninstall

.PHONY: cluster-down
cluster-down: ## Stop the local control plane and delete its state (no process or port left)
	@hack/cluster.sh down

.PHONY: cluster-status
cluster-status: ## Show the local control plane's components, nodes, training-operator and JobSet
	@hack/cluster.sh status

.PHONY: e2e-kind
e2e-kind: deps ## On a Docker host: operator/trainer images (docker build, kind load), kind cluster + KWOK + training-operator + chart, then the e2e and realnode tests
	hack/e2e-kind.sh

.PHONY: crds
crds: deps ## Regenerate everything derived from the API models: crds/, the chart's copy, docs/spec-reference.md
	$(BIN)/python -m specforge_operator.crd --output crds/specforgeruns.specforge.io.yaml
	$(BIN)/python -m specforge_operator.crd --output $(CHART_DIR)/files/specforgeruns.specforge.io.yaml
	$(BIN)/python -m specforge_operator.spec_reference --output docs/spec-reference.md

.PHONY: verify-crds
verify-crds: deps ## Fail when crds/, the chart's CRD or docs/spec-reference.md differ from what the API models generate
	$(BIN)/python -m specforge_operator.crd --check crds/specforgeruns.specforge.io.yaml
	$(BIN)/python -m specforge_operator.crd --check $(CHART_DIR)/files/specforgeruns.specforge.io.yaml
	$(BIN)/python -m specforge_operator.spec_reference --check docs/spec-reference.md

.PHONY: operator-run
operator-run: deps ## Run the operator against the current kubeconfig (all namespaces)
	$(BIN)/python -m specforge_operator --all-namespaces

.PHONY: docs
docs: crds ## Regenerate docs/spec-reference.md (with everything else derived from the API models)

.PHONY: image
image: ## Build the operator and trainer images (needs Docker with BuildKit; not available on every host)
	docker build --target operator -t $(IMAGE_REPO)/operator:$(IMAGE_TAG) .
	docker build --target trainer -t $(IMAGE_REPO)/trainer:$(IMAGE_TAG) .

IMAGES_ARGS ?=
.PHONY: images
images: system-deps ## Build the images without Docker (buildah: base, redis, operator, trainer) and import them into the real node (IMAGES_ARGS=--build-only...)
	hack/images.sh $(IMAGES_ARGS)

.PHONY: images-build
images-build: system-deps ## Build the images only (no cluster needed); `make images` also imports them
	hack/images.sh --build-only

.PHONY: lint-dockerfile
lint-dockerfile: deps ## Lint the Dockerfile with hadolint (installed from PyPI by the dev extra)
	$(BIN)/hadolint Dockerfile

.PHONY: helm-lint
helm-lint: cluster-binaries ## helm lint --strict the operator chart (default values and namespace-restricted)
	$$(hack/build-binaries.sh --print-bin-dir)/helm lint --strict $(CHART_DIR)
	$$(hack/build-binaries.sh --print-bin-dir)/helm lint --strict $(CHART_DIR) --set 'watch.namespaces={team-a}'

.PHONY: chart-test
chart-test: deps cluster-binaries ## Chart tests: rendered-output tests, CRD copy in sync, helm lint
	$(BIN)/pytest tests/integration/chart $(PYTEST_ARGS)
