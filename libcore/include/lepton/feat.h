#ifndef LEPTON_FEAT_H
#define LEPTON_FEAT_H
#endif
