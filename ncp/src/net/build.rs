//! Building the recurrent cell a config names, on its wiring where it has one.

use tch::nn;

use crate::cells::{
    CfcCell, CfcOptions, GruCell, LstmCell, LtcCell, LtcOptions, MlpCell, WiredCfcCell,
};
use crate::config::{CellKind, NcpConfig, NcpError};
use crate::interchange::NamedTensors;
use crate::wiring::Wiring;

/// The recurrent cell of a network, of any kind.
pub(super) enum Cell {
    Ltc(LtcCell),
    Cfc(CfcCell),
    Wired(WiredCfcCell),
    Lstm(LstmCell),
    Gru(GruCell),
    Mlp(MlpCell),
}

/// The recurrent cell `config` names, on `wiring` where it has one: the cell, its state size
/// and its output size; an error names an option that does not fit the cell.
pub(super) fn build_cell(
    cell_path: &nn::Path,
    input_size: usize,
    config: &NcpConfig,
    wiring: Option<&Wiring>,
    named: &mut NamedTensors,
) -> Result<(Cell, usize, usize), NcpError> {
    let bad = |m: &str| Err(NcpError::Config(m.to_string()));
    let backbone_set = config.backbone_units.is_some()
        || config.backbone_layers.is_some()
        || config.backbone_dropout.is_some();
    match (config.cell, wiring) {
        (CellKind::Ltc, Some(w)) => {
            if config.proj_size.is_some() || backbone_set {
                return bad("an LTC has no proj_size or backbone");
            }
            if config.ode_unfolds == 0 {
                return bad("ode_unfolds must be at least 1");
            }
            let options = LtcOptions {
                input_mapping: config.input_mapping,
                output_mapping: config.output_mapping,
                ode_unfolds: config.ode_unfolds,
                epsilon: config.epsilon,
                implicit_constraints: config.implicit_constraints,
            };
            let cell = LtcCell::new(cell_path, "rnn_cell.", w, options, named);
            Ok((Cell::Ltc(cell), w.units(), w.output_dim()))
        }
        (CellKind::Cfc, Some(w)) => {
            if backbone_set {
                return bad("a wired CfC has no backbone (backbone_* must be unset)");
            }
            if w.gap_junction_count() > 0 {
                return bad("gap junctions need the LTC cell (cell = \"ltc\"); a CfC has none");
            }
            let cell = WiredCfcCell::new(cell_path, "rnn_cell.", w, config.mode, named);
            Ok((Cell::Wired(cell), w.units(), w.output_dim()))
        }
        (CellKind::Cfc, None) => unwired_cfc(cell_path, input_size, config, named),
        (CellKind::Lstm | CellKind::Gru | CellKind::Mlp, None) => {
            baseline_cell(cell_path, input_size, config, named)
        }
        (CellKind::Ltc, None) => bad("an LTC needs a wiring or units"),
        (_, Some(_)) => bad("a baseline cell (lstm, gru, mlp) has no wiring"),
    }
}

/// A CfC without a wiring: `units` fully connected neurons behind a backbone.
fn unwired_cfc(
    path: &nn::Path,
    input_size: usize,
    config: &NcpConfig,
    named: &mut NamedTensors,
) -> Result<(Cell, usize, usize), NcpError> {
    let bad = |m: &str| Err(NcpError::Config(m.to_string()));
    let units = config.units.unwrap_or(0);
    if units == 0 {
        return bad("units must be at least 1");
    }
    let options = CfcOptions {
        mode: config.mode,
        activation: config.activation,
        backbone_units: config.backbone_units.unwrap_or(128),
        backbone_layers: config.backbone_layers.unwrap_or(1),
        backbone_dropout: config.backbone_dropout.unwrap_or(0.0),
    };
    if options.backbone_layers > 0 && options.backbone_units == 0 {
        return bad("backbone_units must be at least 1");
    }
    if !(0.0..1.0).contains(&options.backbone_dropout) {
        return bad("backbone_dropout must be in [0, 1)");
    }
    let cell = CfcCell::new(path, "rnn_cell.", input_size, units, options, None, named);
    Ok((Cell::Cfc(cell), units, units))
}

/// Builds a baseline cell (LSTM, GRU, MLP) of `units` from `config`, checking the fields a
/// baseline reads (`units`, `proj_size`, the MLP's `backbone_layers`) and refusing the rest.
fn baseline_cell(
    path: &nn::Path,
    input_size: usize,
    config: &NcpConfig,
    named: &mut NamedTensors,
) -> Result<(Cell, usize, usize), NcpError> {
    let bad = |m: &str| Err(NcpError::Config(m.to_string()));
    let units = config.units.unwrap_or(0);
    if units == 0 {
        return bad("units must be at least 1");
    }
    if config.proj_size.is_none() {
        return bad("a baseline cell (lstm, gru, mlp) needs `proj_size`: its number of outputs");
    }
    if config.mixed_memory || config.backbone_units.is_some() || config.backbone_dropout.is_some() {
        return bad("a baseline cell has no mixed_memory, backbone_units or backbone_dropout");
    }
    let cell = match config.cell {
        CellKind::Lstm => Cell::Lstm(LstmCell::new(path, "rnn_cell.", input_size, units, named)),
        CellKind::Gru => Cell::Gru(GruCell::new(path, "rnn_cell.", input_size, units, named)),
        CellKind::Mlp => {
            let layers = config.backbone_layers.unwrap_or(2);
            if layers == 0 {
                return bad("an MLP needs backbone_layers of at least 1");
            }
            Cell::Mlp(MlpCell::new(
                path,
                "rnn_cell.",
                input_size,
                units,
                layers,
                named,
            ))
        }
        CellKind::Ltc | CellKind::Cfc => unreachable!("not a baseline"),
    };
    Ok((cell, units, units))
}
