/*
 * lepton.h - the whole public API of libcore (liblepton): one include per module, in the order
 * the data flows. Dependencies point downward only (see shared DESIGN.md).
 */
#ifndef LEPTON_H
#define LEPTON_H

#include "lepton/base.h"
#include "lepton/data.h"
#include "lepton/clean.h"
#include "lepton/linalg.h"
#include "lepton/text.h"
#include "lepton/feat.h"
#include "lepton/image.h"
#include "lepton/backend.h"
#include "lepton/model.h"
#include "lepton/mf.h"
#include "lepton/explain.h"
#include "lepton/metrics.h"
#include "lepton/train.h"
#include "lepton/tune.h"
#include "lepton/finetune.h"
#include "lepton/registry.h"
#include "lepton/safetensors.h"
#include "lepton/encoder.h"
#include "lepton/serve.h"
#include "lepton/monitor.h"

#endif
