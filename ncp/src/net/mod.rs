//! The network a user builds (ncps's `LTC` or `CfC` module): a cell over a wiring, optional
//! mixed memory and projection, run over `(B, L, F)` sequences with per-step, per-sample
//! timespans, or stepped one observation at a time while acting. It picks the path: the
//! hand-written CPU kernels where they apply (LTC and wired CfC on the CPU), libtorch autograd
//! elsewhere, with the same results either way.

mod build;
mod kernel_path;
mod pairs;
mod state;
mod tape;

use std::path::Path;
use std::sync::Arc;

use tch::{nn, Device, Kind, Tensor};

use crate::cells::{CfcHeads, Dense, LstmCell, LtcCell};
use crate::config::{NcpConfig, NcpError};
use crate::interchange::NamedTensors;
use crate::kernels::ltc::LtcKernel;
use crate::wiring::{NeuronType, Wiring};
use build::{build_cell, Cell};
use kernel_path::{KernelCaches, KernelCell};
use pairs::Pairs;
pub use state::State;
pub use tape::Tape;

enum Prepared {
    None,
    Cfc(CfcHeads),
    Wired(Vec<CfcHeads>),
}

/// A network of one recurrent cell of any kind: LTC, CfC, LSTM, GRU or MLP (the ncps `LTC` or
/// `CfC` module for the first two).
pub struct CellNet {
    cell: Cell,
    lstm: Option<LstmCell>,
    fc: Option<Dense>,
    named: NamedTensors,
    config: NcpConfig,
    wiring: Option<Wiring>,
    input_size: usize,
    state_size: usize,
    output_size: usize,
    training: bool,
    kernels: KernelCaches,
    /// Sensor and motor neuron pairs around the cell, if configured.
    pairs: Option<Pairs>,
}

impl CellNet {
    /// Builds the network for `input_size` features with its variables under `path`
    /// (their ncps keys are relative to the module: `rnn_cell.…`, `lstm.…`, `fc.…`).
    pub fn new(path: &nn::Path, input_size: usize, config: &NcpConfig) -> Result<Self, NcpError> {
        let bad = |m: &str| Err(NcpError::Config(m.to_string()));
        if input_size == 0 {
            return bad("input_size must be at least 1");
        }
        let mut named = NamedTensors::default();
        let cell_path = path.sub("rnn_cell");
        let unbuilt = config.wiring()?;
        let pairs = Pairs::resolve(
            &config.sensors,
            &config.motors,
            unbuilt.as_ref(),
            input_size,
        )?;
        let wiring = match (unbuilt, &pairs) {
            (Some(w), Some(p)) => Some(p.build(&w, input_size)?),
            (Some(w), None) => Some(w.built(input_size)?),
            (None, _) => None,
        };
        let features = pairs.as_ref().and_then(Pairs::features);
        let cell_inputs = features.unwrap_or(input_size);
        let (cell, state_size, output_size) =
            build_cell(&cell_path, cell_inputs, config, wiring.as_ref(), &mut named)?;
        let outputs = pairs.as_ref().and_then(Pairs::outputs);
        if outputs.is_some() && config.proj_size.is_some() {
            return bad("give motors or proj_size, not both");
        }
        let lstm = config.mixed_memory.then(|| {
            LstmCell::new(
                &path.sub("lstm"),
                "lstm.",
                cell_inputs,
                state_size,
                &mut named,
            )
        });
        let fc = match config.proj_size {
            Some(0) => return bad("proj_size must be at least 1"),
            Some(p) => Some(Dense::new(
                path,
                "",
                "fc",
                output_size as i64,
                p as i64,
                false,
                &mut named,
            )),
            None => None,
        };
        Ok(Self {
            cell,
            lstm,
            fc,
            named,
            config: config.clone(),
            wiring,
            input_size,
            state_size,
            output_size: outputs.or(config.proj_size).unwrap_or(output_size),
            training: false,
            kernels: KernelCaches::default(),
            pairs,
        })
    }

    /// The config it was built from.
    pub fn config(&self) -> &NcpConfig {
        &self.config
    }
    /// The built wiring (None for a dense CfC).
    pub fn wiring(&self) -> Option<&Wiring> {
        self.wiring.as_ref()
    }
    /// Number of input features.
    pub fn input_size(&self) -> usize {
        self.input_size
    }
    /// Number of neurons in the state (`N`).
    pub fn state_size(&self) -> usize {
        self.state_size
    }
    /// Width of the outputs (motor neurons, or `proj_size`).
    pub fn output_size(&self) -> usize {
        self.output_size
    }
    /// The LTC cell, if this is an LTC.
    pub fn ltc(&self) -> Option<&LtcCell> {
        match &self.cell {
            Cell::Ltc(c) => Some(c),
            _ => None,
        }
    }
    /// Enables dropout (dense CfC backbones only); off by default.
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    /// Neuron id of each state column: identity for LTC, layer order for the wired CfC.
    pub fn state_neuron_ids(&self) -> Vec<usize> {
        match &self.cell {
            Cell::Wired(c) => c.state_neuron_ids(),
            _ => (0..self.state_size).collect(),
        }
    }

    /// A label per state column (`motor_0`, `command_3`, …; `neuron_i` for a dense CfC).
    pub fn state_labels(&self) -> Vec<String> {
        match &self.wiring {
            Some(w) => {
                let names = w.neuron_names();
                self.state_neuron_ids()
                    .iter()
                    .map(|&i| names[i].clone())
                    .collect()
            }
            None => (0..self.state_size)
                .map(|i| format!("neuron_{i}"))
                .collect(),
        }
    }

    /// Neuron types per state column.
    pub fn state_neuron_types(&self) -> Vec<NeuronType> {
        match &self.wiring {
            Some(w) => self
                .state_neuron_ids()
                .iter()
                .map(|&i| w.neuron_type(i))
                .collect(),
            None => vec![NeuronType::Inter; self.state_size],
        }
    }

    /// The ncps-named tensors (parameters and masks).
    pub fn named_tensors(&self) -> &NamedTensors {
        &self.named
    }

    /// Saves all weights (masks included) as safetensors with ncps keys.
    pub fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<(), NcpError> {
        Ok(self.named.save(path.as_ref())?)
    }

    /// Loads weights saved by ncps (`state_dict` → safetensors) or by [`Self::save_safetensors`]:
    /// keys must match exactly, masks must equal this wiring's.
    pub fn load_safetensors(&self, path: impl AsRef<Path>) -> Result<(), NcpError> {
        Ok(self.named.load(path.as_ref())?)
    }

    /// Clamps LTC weights in explicit-constraint mode (call after every optimizer step).
    pub fn apply_weight_constraints(&self) {
        if let Cell::Ltc(c) = &self.cell {
            c.apply_weight_constraints();
        }
    }

    /// Zero state for `batch` samples.
    pub fn initial_state(&self, batch: i64, device: Device) -> State {
        let z = || Tensor::zeros([batch, self.state_size as i64], (Kind::Float, device));
        let memory = self.lstm.is_some() || matches!(self.cell, Cell::Lstm(_));
        State {
            h: z(),
            c: memory.then(z),
        }
    }

    /// Weights prepared once for a run of steps (CfC heads).
    fn prepare(&self) -> Prepared {
        match &self.cell {
            Cell::Cfc(c) => Prepared::Cfc(c.heads()),
            Cell::Wired(c) => Prepared::Wired(c.heads()),
            Cell::Ltc(_) | Cell::Lstm(_) | Cell::Gru(_) | Cell::Mlp(_) => Prepared::None,
        }
    }

    fn cell_step(&self, x: &Tensor, state: &State, ts: &Tensor) -> (Tensor, State) {
        self.cell_step_with(&self.prepare(), x, state, ts)
    }

    fn cell_step_with(
        &self,
        prepared: &Prepared,
        x: &Tensor,
        state: &State,
        ts: &Tensor,
    ) -> (Tensor, State) {
        let baseline = match &self.cell {
            Cell::Lstm(cell) => {
                let c = state
                    .c
                    .as_ref()
                    .map_or_else(|| state.h.zeros_like(), |c| c.shallow_clone());
                let (h, c) = cell.step(x, &state.h, &c);
                Some(State { h, c: Some(c) })
            }
            Cell::Gru(cell) => Some(State {
                h: cell.step(x, &state.h),
                c: None,
            }),
            Cell::Mlp(cell) => Some(State {
                h: cell.forward(x),
                c: None,
            }),
            _ => None,
        };
        if let Some(next) = baseline {
            return (self.project(next.h.shallow_clone()), next);
        }
        let (h, c) = match (&self.lstm, &state.c) {
            (Some(lstm), Some(c)) => {
                let (h, c) = lstm.step(x, &state.h, c);
                (h, Some(c))
            }
            (Some(lstm), None) => {
                let c = state.h.zeros_like();
                let (h, c) = lstm.step(x, &state.h, &c);
                (h, Some(c))
            }
            (None, _) => (state.h.shallow_clone(), None),
        };
        let (out, h) = match (&self.cell, prepared) {
            (Cell::Ltc(cell), _) => cell.step(x, &h, ts),
            (Cell::Cfc(cell), Prepared::Cfc(heads)) => {
                let h = cell.step_with(heads, x, &h, ts, self.training);
                (h.shallow_clone(), h)
            }
            (Cell::Cfc(cell), _) => {
                let h = cell.step(x, &h, ts, self.training);
                (h.shallow_clone(), h)
            }
            (Cell::Wired(cell), Prepared::Wired(heads)) => {
                cell.step_with(heads, x, &h, ts, self.training)
            }
            (Cell::Wired(cell), _) => cell.step(x, &h, ts, self.training),
            (Cell::Lstm(_) | Cell::Gru(_) | Cell::Mlp(_), _) => unreachable!("stepped above"),
        };
        (self.project(out), State { h, c })
    }

    /// Whether the hand-written CPU kernel computes this network (LTC or wired CfC without
    /// mixed memory on the CPU, no autograd needed).
    fn no_grad_kernel_cell(&self, x: &Tensor) -> Option<KernelCell<'_>> {
        self.kernel_cell(x).filter(|_| !grad_enabled())
    }

    /// The cell as the kernels see it, when they can run this network on `x`: an LTC or a
    /// wired CfC without mixed memory, on CPU f32 inputs. (A projection `fc` is applied to the
    /// kernel's outputs by libtorch.)
    fn kernel_cell(&self, x: &Tensor) -> Option<KernelCell<'_>> {
        if self.lstm.is_some() || x.device() != Device::Cpu || x.kind() != Kind::Float {
            return None;
        }
        match &self.cell {
            Cell::Ltc(c) => Some(KernelCell::Ltc(c)),
            Cell::Wired(c) => Some(KernelCell::Wired(c)),
            Cell::Cfc(_) | Cell::Lstm(_) | Cell::Gru(_) | Cell::Mlp(_) => None,
        }
    }

    /// The output projection `fc`, if configured.
    fn project(&self, y: Tensor) -> Tensor {
        match (&self.fc, &self.pairs) {
            (Some(fc), _) => fc.forward(&y, None),
            (None, Some(pairs)) => pairs.act(y),
            (None, None) => y,
        }
    }

    /// Inputs `(…, S)` as the cell reads them: the sensor pairs' features, or themselves.
    pub fn sense(&self, x: &Tensor) -> Tensor {
        match &self.pairs {
            Some(pairs) => pairs.sense(x),
            None => x.shallow_clone(),
        }
    }

    /// Names of what the cell's inputs are, from the names of the network's inputs: with
    /// sensor pairs `theta+`, `theta-` per pair, else the names themselves.
    pub fn sensory_names(&self, names: &[String]) -> Vec<String> {
        match &self.pairs {
            Some(pairs) => pairs.feature_names(names),
            None => names.to_vec(),
        }
    }

    /// Runs a sequence `(B, L, F)` from `h0` (zeros if None) with optional per-step,
    /// per-sample timespans `(B, L)` or `(B, L, 1)` (1.0 if None). Returns the outputs
    /// `(B, L, out)` and the final state. Differentiable with libtorch autograd; without
    /// grad on the CPU the LTC and the wired CfC run the hand-written kernels.
    pub fn forward_sequence(
        &self,
        x: &Tensor,
        h0: Option<&State>,
        timespans: Option<&Tensor>,
    ) -> (Tensor, State) {
        let x = &self.sense(x);
        if let Some(cell) = self.no_grad_kernel_cell(x) {
            let (h0, ts) = self.kernel_inputs(x, h0, timespans);
            let (y, h) = self.kernels.forward_sequence(cell, x, &h0, ts.as_ref());
            return (self.project(y), State { h, c: None });
        }
        self.forward_generic(x, h0, timespans, None)
    }

    /// The libtorch path over a sequence, resetting the state before steps marked in
    /// `starts (B, L)` (episode starts), if given.
    fn forward_generic(
        &self,
        x: &Tensor,
        h0: Option<&State>,
        timespans: Option<&Tensor>,
        starts: Option<&Tensor>,
    ) -> (Tensor, State) {
        self.forward_generic_states(x, h0, timespans, starts, None)
    }

    /// [`Self::forward_generic`], also collecting each step's state `h` into `states`.
    fn forward_generic_states(
        &self,
        x: &Tensor,
        h0: Option<&State>,
        timespans: Option<&Tensor>,
        starts: Option<&Tensor>,
        mut states: Option<&mut Vec<Tensor>>,
    ) -> (Tensor, State) {
        let (b, l) = (x.size()[0], x.size()[1]);
        let mut state = match h0 {
            Some(s) => State {
                h: s.h.shallow_clone(),
                c: s.c.as_ref().map(|c| c.shallow_clone()),
            },
            None => self.initial_state(b, x.device()),
        };
        let ts = timespans.map(|t| t.reshape([b, l]).to_kind(Kind::Float));
        let one = Tensor::from(1.0f32).to_device(x.device());
        let prepared = self.prepare();
        let mut outs = Vec::with_capacity(l as usize);
        for t in 0..l {
            if let Some(starts) = starts {
                state = state.reset(&starts.select(1, t).to_device(x.device()));
            }
            let x_t = x.select(1, t);
            let ts_t = match &ts {
                Some(ts) => ts.select(1, t).unsqueeze(1),
                None => one.shallow_clone(),
            };
            let (out, next) = self.cell_step_with(&prepared, &x_t, &state, &ts_t);
            outs.push(out);
            if let Some(states) = states.as_deref_mut() {
                states.push(next.h.shallow_clone());
            }
            state = next;
        }
        (Tensor::stack(&outs, 1), state)
    }

    /// For auditing, without grad: like [`Self::forward_sequence`] but also returns every
    /// neuron's potential after each step, `(B, L, N)` in state order (see
    /// [`Self::state_neuron_ids`] / [`Self::state_labels`]).
    pub fn forward_sequence_states(
        &self,
        x: &Tensor,
        h0: Option<&State>,
        timespans: Option<&Tensor>,
    ) -> (Tensor, Tensor, State) {
        tch::no_grad(|| {
            let x = &self.sense(x);
            let mut states = Vec::new();
            let (y, last) = self.forward_generic_states(x, h0, timespans, None, Some(&mut states));
            (y, Tensor::stack(&states, 1), last)
        })
    }

    /// Training forward: like [`Self::forward_sequence`] with autograd, plus optional episode
    /// starts `(B, L)` (bool or 0/1: the state is zeroed before those steps, as during the
    /// rollout). An LTC or wired CfC without mixed memory on the CPU runs the hand-written
    /// kernel, whose backward runs when the returned [`Tape`] does:
    /// call [`Tape::backward`] with the loss instead of `loss.backward()`.
    pub fn forward_sequence_train(
        &self,
        x: &Tensor,
        h0: Option<&State>,
        timespans: Option<&Tensor>,
        starts: Option<&Tensor>,
    ) -> (Tensor, State, Tape) {
        // With sensor pairs and an input that needs its gradient (saliency, an encoder), the
        // cell reads a leaf whose gradient the tape carries back through the pairs.
        let sensed = self.sense(x);
        let leaf = (self.pairs.is_some() && x.requires_grad())
            .then(|| sensed.detach().set_requires_grad(true));
        let (y, s, tape) =
            self.train_sensed(leaf.as_ref().unwrap_or(&sensed), h0, timespans, starts);
        match &leaf {
            Some(leaf) => (y, s, tape.with_upstream(leaf, &sensed)),
            None => (y, s, tape),
        }
    }

    /// [`Self::forward_sequence_train`] on the inputs as the cell reads them.
    fn train_sensed(
        &self,
        x: &Tensor,
        h0: Option<&State>,
        timespans: Option<&Tensor>,
        starts: Option<&Tensor>,
    ) -> (Tensor, State, Tape) {
        if let Some(cell) = self.kernel_cell(x) {
            let (h0, ts) = self.kernel_inputs(x, h0, timespans);
            let (y, h, tape) =
                self.kernels
                    .forward_sequence_train(cell, x, &h0, ts.as_ref(), starts);
            return (self.project(y), State { h, c: None }, Tape::kernel(tape));
        }
        let (y, s) = self.forward_generic(x, h0, timespans, starts);
        (y, s, Tape::default())
    }

    /// One environment step under no-grad: `x (B, F)`, state, elapsed time `(B, 1)` (or a
    /// scalar tensor) → `(outputs (B, out), new state)`. Uses the CPU kernels (LTC, wired CfC)
    /// on the CPU.
    pub fn step(&self, x: &Tensor, state: &State, dt: &Tensor) -> (Tensor, State) {
        tch::no_grad(|| {
            let x = &self.sense(x);
            if let Some(cell) = self.kernel_cell(x) {
                let (y, h) = self.kernels.step(cell, x, &state.h, dt);
                return (self.project(y), State { h, c: None });
            }
            self.cell_step(x, state, dt)
        })
    }

    /// The initial state and `(B, L)` timespans the kernels read.
    fn kernel_inputs(
        &self,
        x: &Tensor,
        h0: Option<&State>,
        timespans: Option<&Tensor>,
    ) -> (Tensor, Option<Tensor>) {
        let (b, l) = (x.size()[0], x.size()[1]);
        let h0 = match h0 {
            Some(s) => s.h.shallow_clone(),
            None => self.initial_state(b, x.device()).h,
        };
        let ts = timespans.map(|t| t.reshape([b, l]).to_kind(Kind::Float));
        (h0, ts)
    }

    /// For auditing an LTC: its kernel form, which computes every synapse's activity
    /// ([`LtcKernel::synapse_activity`]); None for other cells.
    pub fn ltc_kernel(&self) -> Option<Arc<LtcKernel>> {
        match &self.cell {
            Cell::Ltc(cell) => Some(self.kernels.ltc_kernel(cell)),
            _ => None,
        }
    }

    /// One step through the generic libtorch path (for checking the kernel against it).
    pub fn step_generic(&self, x: &Tensor, state: &State, dt: &Tensor) -> (Tensor, State) {
        self.cell_step(&self.sense(x), state, dt)
    }
}

/// Whether libtorch autograd is currently recording.
pub fn grad_enabled() -> bool {
    // tch has no getter: an op on a leaf that requires grad records a graph only in grad mode.
    thread_local! {
        static PROBE: Tensor =
            Tensor::zeros([1], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    }
    PROBE.with(|p| (p * 1.0).requires_grad())
}
