#include "fraud.h"
int main(void) { return 0; }
