/*
 * lepton.h - the whole public API of libcore (liblepton): one include per module, in the order
 * the data flows. Dependencies point downward only (see shared DESIGN.md).
 */
#ifndef LEPTON_H
#define LEPTON_H

#include "lepton/base.h"
#include "lepton/data.h"
#include "lepton/linalg.h"
#include "lepton/text.h"
#include "lepton/feat.h"

#endif
