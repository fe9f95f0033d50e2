//! The convolutional encoder of a camera policy: the image at the start of an observation
//! through a few ReLU convolutions, flattened, joined with the observation's flat features and
//! mapped to `features` tanh outputs — the sensory inputs of the actor's cell (the NCP paper's
//! conv head: 32 features into a 19-neuron NCP) and of the critic.

use tch::{nn, Tensor};
use wormnet_sim::ImageShape;

use super::config::{EncoderConfig, PolicyError};

/// A built encoder.
pub(super) struct Encoder {
    shape: ImageShape,
    convs: Vec<nn::Conv2D>,
    head: nn::Linear,
    obs_dim: usize,
    features: usize,
}

impl Encoder {
    /// Builds the encoder under `path` for observations of `obs_dim` beginning with `shape`.
    pub(super) fn new(
        path: &nn::Path,
        shape: ImageShape,
        obs_dim: usize,
        config: &EncoderConfig,
    ) -> Result<Self, PolicyError> {
        let EncoderConfig::Conv {
            channels,
            kernels,
            strides,
            features,
        } = config;
        let bad = |m: String| Err(PolicyError::Encoder(m));
        if channels.is_empty() || channels.len() != kernels.len() || kernels.len() != strides.len()
        {
            return bad(format!(
                "channels, kernels and strides need one entry per convolution (got {}, {}, {})",
                channels.len(),
                kernels.len(),
                strides.len()
            ));
        }
        if *features == 0 || channels.contains(&0) || kernels.contains(&0) || strides.contains(&0) {
            return bad("features, channels, kernels and strides must be at least 1".into());
        }
        let (mut c, mut h, mut w) = (shape.channels, shape.height, shape.width);
        let mut convs = Vec::new();
        for (i, ((&out, &k), &s)) in channels.iter().zip(kernels).zip(strides).enumerate() {
            if k > h || k > w {
                return bad(format!(
                    "convolution {i}: a {k}×{k} kernel does not fit its {h}×{w} input (the \
                     image is {}×{}); use smaller kernels or strides, or fewer convolutions",
                    shape.height, shape.width
                ));
            }
            let conv = nn::conv2d(
                path.sub(format!("conv{i}")),
                c as i64,
                out as i64,
                k as i64,
                nn::ConvConfig {
                    stride: s as i64,
                    ..Default::default()
                },
            );
            convs.push(conv);
            (c, h, w) = (out, (h - k) / s + 1, (w - k) / s + 1);
        }
        let flat = c * h * w + (obs_dim - shape.len());
        let head = nn::linear(
            path.sub("head"),
            flat as i64,
            *features as i64,
            Default::default(),
        );
        Ok(Encoder {
            shape,
            convs,
            head,
            obs_dim,
            features: *features,
        })
    }

    /// Width of the output.
    pub(super) fn output_size(&self) -> usize {
        self.features
    }

    /// Observations `(…, O)` → features `(…, F)`.
    pub(super) fn forward(&self, obs: &Tensor) -> Tensor {
        let size = obs.size();
        let lead = &size[..size.len() - 1];
        let flat = obs.reshape([-1, self.obs_dim as i64]);
        let pixels = self.shape.len() as i64;
        let s = self.shape;
        let mut x = flat.narrow(1, 0, pixels).reshape([
            -1,
            s.channels as i64,
            s.height as i64,
            s.width as i64,
        ]);
        for conv in &self.convs {
            x = x.apply(conv).relu();
        }
        let rest = flat.narrow(1, pixels, self.obs_dim as i64 - pixels);
        let y = Tensor::cat(&[x.flatten(1, -1), rest], 1)
            .apply(&self.head)
            .tanh();
        let mut out: Vec<i64> = lead.to_vec();
        out.push(self.features as i64);
        y.reshape(out.as_slice())
    }
}
