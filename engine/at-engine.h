/* at-engine.h: the public API of libatelier-engine. */
#pragma once

#include "at-error.h"
#include "gpu/at-vk.h"
#include "gpu/at-device.h"
#include "gpu/at-buffer.h"
#include "gpu/at-pipeline.h"
#include "gpu/at-command.h"
#include "tensor/at-dtype.h"
#include "tensor/at-graph.h"
#include "tensor/at-ops-elementwise.h"
/* -- matmul headers -- */
#include "tensor/at-ops-matmul.h"
/* -- norm headers -- */
#include "tensor/at-ops-norm.h"
/* -- conv headers -- */
#include "tensor/at-ops-conv.h"
/* -- attention headers -- */
#include "tensor/at-ops-attention.h"
/* -- rows headers -- */
#include "tensor/at-ops-rows.h"
#include "formats/at-file-tensors.h"
/* -- gguf headers -- */
#include "formats/at-gguf.h"
/* -- safetensors headers -- */
#include "formats/at-safetensors.h"
#include "formats/at-diffusers.h"
#include "formats/at-ml5.h"
/* -- torch headers -- */
#include "formats/at-pickle.h"
#include "formats/at-torch.h"
/* -- model headers -- */
#include "formats/at-model-file.h"
#include "pipelines/at-text-actions.h"
#include "pipelines/at-complete-text.h"
/* -- tokenizer headers -- */
#include "text/at-tokenizer.h"
/* -- jinja headers -- */
#include "text/at-jinja.h"
/* -- llm headers -- */
#include "models/at-llm.h"
#include "text/at-sampler.h"
