"""Task ``teacher_student_microcircuit``: the non-linear regression of Sacramento et al. (2018 NeurIPS,
supplementary): a student learns to mimic a fixed random teacher network.

Inputs x ~ U(−a, a)^{n_in} (a = ``input_range``, paper 1); teacher y = W2 φ(W1 x) with a hidden
layer of ``teacher_hidden`` units, weights W1, W2 uniform in [−w, w] (w = ``weight_range``, paper 1)
and the paper's soft rectifier φ(u) = γ log(1 + exp(β(u − θ))) (γ 0.1, β 1, θ 3). The teacher's
output y is the target potential of the student's output pyramids (use the MSE objective). The
existing ``teacher_student_nonlinear`` draws Gaussian inputs and weights and has no γ, β, θ, so it
cannot express this teacher. The teacher is drawn once from the task rng, before the inputs.
"""

from __future__ import annotations

from dendrite_sim.core.interfaces import Dataset, Task
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine.nonlinearities import soft_relu


@register("task", "teacher_student_microcircuit")
class MicrocircuitTeacherStudent(Task):
    """Regression onto a random soft-ReLU teacher y = W2 φ(W1 x), uniform weights and inputs."""

    params = {
        "n_in": Field("int", 30, "input dimension", lo=1),
        "teacher_hidden": Field("int", 20, "hidden units of the teacher", lo=1),
        "n_out": Field("int", 10, "output dimension", lo=1),
        "n_train": Field("int", 1000, "training samples", lo=1),
        "n_test": Field("int", 500, "test samples", lo=1),
        "input_range": Field("float", 1.0, "inputs uniform in [-input_range, input_range]",
                             lo=0, lo_open=True),
        "weight_range": Field("float", 1.0, "teacher weights uniform in [-weight_range, weight_range]",
                              lo=0, lo_open=True),
        "phi_gamma": Field("float", 0.1, "teacher soft-ReLU γ", lo=0, lo_open=True),
        "phi_beta": Field("float", 1.0, "teacher soft-ReLU β", lo=0, lo_open=True),
        "phi_theta": Field("float", 3.0, "teacher soft-ReLU θ"),
        "target_noise": Field("float", 0.0, "s.d. of Gaussian noise added to the targets", lo=0),
    }

    def __init__(self, n_in=30, teacher_hidden=20, n_out=10, n_train=1000, n_test=500,
                 input_range=1.0, weight_range=1.0, phi_gamma=0.1, phi_beta=1.0, phi_theta=3.0,
                 target_noise=0.0):
        self.n_in, self.teacher_hidden, self.n_out = n_in, teacher_hidden, n_out
        self.n_train, self.n_test = n_train, n_test
        self.input_range, self.weight_range = input_range, weight_range
        self.phi = (phi_gamma, phi_beta, phi_theta)
        self.target_noise = target_noise

    def size_hint(self):
        return self.n_train, self.n_test, self.n_in, self.n_out

    def dataset(self, rng):
        f = soft_relu(*self.phi)[0]
        w = self.weight_range
        self.W1 = rng.uniform(-w, w, (self.teacher_hidden, self.n_in))
        self.W2 = rng.uniform(-w, w, (self.n_out, self.teacher_hidden))
        a = self.input_range
        x_train = rng.uniform(-a, a, (self.n_train, self.n_in))
        x_test = rng.uniform(-a, a, (self.n_test, self.n_in))

        def T(x):
            return f(x @ self.W1.T) @ self.W2.T

        y_train, y_test = T(x_train), T(x_test)
        if self.target_noise > 0:
            y_train = y_train + self.target_noise * rng.standard_normal(y_train.shape)
            y_test = y_test + self.target_noise * rng.standard_normal(y_test.shape)
        return Dataset(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
