# univision: set-up, demo and tests. Every target creates .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
FMNIST_DIR := /usr/share/datasets/fashion-mnist
DEMO_YAML := univision/configs/experiments/image_classification/fashion_mnist_mnv4_conv_small_cpu.yaml
DEMO_RUN := runs/demo
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test fashion-mnist clean-demo

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

# Debian ships the full Fashion-MNIST set; where apt is missing (or we are not
# root), univision.data falls back to the standard Keras download.
fashion-mnist:
	@if [ -f $(FMNIST_DIR)/train-images-idx3-ubyte.gz ]; then \
	  echo "Fashion-MNIST: $(FMNIST_DIR)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then \
	  sudo apt-get update -qq && sudo apt-get install -y -qq dataset-fashion-mnist; \
	else \
	  echo "No apt: Fashion-MNIST will be downloaded by the Keras loader."; \
	fi

demo: $(VENV)/.runtime fashion-mnist clean-demo
	$(PY) -m univision.data.fashion_mnist --output_dir=data/fashion_mnist
	$(PY) train.py --experiment=mnv4_fashion_mnist --mode=train_and_eval \
	  --config_file=$(DEMO_YAML) --model_dir=$(DEMO_RUN)
	$(PY) export.py --experiment=mnv4_fashion_mnist --config_file=$(DEMO_YAML) \
	  --checkpoint_path=$(DEMO_RUN) --export_dir=$(DEMO_RUN)/export \
	  --input_type=image_bytes --input_image_size=64,64

clean-demo:
	rm -rf $(DEMO_RUN)

test: $(VENV)/.dev fashion-mnist
	$(PY) -m pytest -n 2 tests
