//! Activation functions as `config.json` names them (`hidden_act`, `activation`).

use candle_core::Tensor;
use serde::Deserialize;

/// `hidden_act` / `activation` values of config.json. `gelu` is the exact (erf) GELU, as in
/// `transformers`; the tanh approximation goes by its own names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Gelu,
    #[serde(alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluNew,
    Relu,
    #[serde(alias = "swish")]
    Silu,
    Tanh,
}

impl Activation {
    pub fn apply(self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Gelu => xs.gelu_erf(),
            Self::GeluNew => crate::kernels::activation::gelu_tanh_tensor(xs),
            Self::Relu => xs.relu(),
            Self::Silu => candle_nn::ops::silu(xs),
            Self::Tanh => xs.tanh(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn gelu_is_exact_and_gelu_new_is_the_tanh_form() {
        let x = Tensor::new(&[-1.5f32, 0.5, 2.0], &Device::Cpu).unwrap();
        let exact = Activation::Gelu
            .apply(&x)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        // torch.nn.functional.gelu([-1.5, 0.5, 2.0]), torch 2.9.1
        let want = [-0.100_210_86f32, 0.345_731_2, 1.954_5];
        for (a, b) in exact.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        let approx: Activation = serde_json::from_str("\"gelu_new\"").unwrap();
        assert_eq!(approx, Activation::GeluNew);
        let a = approx.apply(&x).unwrap().to_vec1::<f32>().unwrap();
        assert!((a[0] - -0.100_428_43).abs() < 1e-6, "{}", a[0]);
    }
}
