/*
 * lepton.h - the whole public API of libcore (liblepton): one include per module, in the order
 * the data flows. Dependencies point downward only (see shared DESIGN.md).
 */
#ifndef LEPTON_H
#define LEPTON_H

#include "lepton/base.h"
#include "lepton/data.h"
#include "lepton/linalg.h"
#include "lepton/registry.h"
#include "lepton/serve.h"

#endif
