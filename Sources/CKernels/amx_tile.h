// The tile configuration LDTILECFG reads (palette 1), shared by the AMX kernels.
#ifndef LM_AMX_TILE_H
#define LM_AMX_TILE_H
#include <stdint.h>

typedef struct {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) tile_config;

#endif
