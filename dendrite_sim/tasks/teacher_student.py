"""Teacher–student regression: a student network learns to mimic a fixed random teacher.

Inputs x ~ N(0, I_{n_in}); targets y = T(x) + ε with ε ~ N(0, target_noise²). The teacher is
drawn once from the task rng, before the inputs.

* ``teacher_student_linear`` — T(x) = T x with the elements of T uniform in [−1, 1]; with the
  defaults (30 inputs, 10 outputs) and a 30-20-10 student this is the linear problem of
  Lillicrap, Cownden, Tweed & Akerman 2016 (Nat Commun 7:13276, Fig 2), where feedback alignment
  matches backprop.
* ``teacher_student_nonlinear`` — T(x) = V f(U x + c) with a hidden layer of ``teacher_hidden``
  units, U ~ N(0, gain²/n_in), c ~ N(0, 0.1²), V ~ N(0, 1/teacher_hidden), f a named
  non-linearity. A student needs hidden units with a matching non-linearity to fit it.

Targets are real vectors of shape (n, n_out); use an MSE objective.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from dendrite_sim.core.interfaces import Dataset, Task
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine.nonlinearities import NONLINEARITIES

COMMON = {
    "n_in": Field("int", 30, "input dimension", lo=1),
    "n_out": Field("int", 10, "output dimension", lo=1),
    "n_train": Field("int", 1000, "training samples", lo=1),
    "n_test": Field("int", 500, "test samples", lo=1),
    "target_noise": Field("float", 0.0, "s.d. of Gaussian noise added to the targets", lo=0),
}


class _TeacherStudent(Task):
    def __init__(self, n_in=30, n_out=10, n_train=1000, n_test=500, target_noise=0.0):
        self.n_in, self.n_out = n_in, n_out
        self.n_train, self.n_test, self.target_noise = n_train, n_test, target_noise

    @abstractmethod
    def teacher(self, rng: np.random.Generator):
        """Draw the teacher; returns a function x (n, n_in) → T(x) (n, n_out)."""

    def size_hint(self):
        return self.n_train, self.n_test, self.n_in, self.n_out

    def dataset(self, rng):
        T = self.teacher(rng)
        x_train = rng.standard_normal((self.n_train, self.n_in))
        x_test = rng.standard_normal((self.n_test, self.n_in))
        y_train, y_test = T(x_train), T(x_test)
        if self.target_noise > 0:
            y_train = y_train + self.target_noise * rng.standard_normal(y_train.shape)
            y_test = y_test + self.target_noise * rng.standard_normal(y_test.shape)
        return Dataset(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


@register("task", "teacher_student_linear")
class LinearTeacherStudent(_TeacherStudent):
    """Regression onto a random linear map y = T x, T uniform in [−1, 1] (Lillicrap et al. 2016)."""

    params = dict(COMMON)

    def teacher(self, rng):
        self.T = rng.uniform(-1.0, 1.0, (self.n_out, self.n_in))
        return lambda x: x @ self.T.T


@register("task", "teacher_student_nonlinear")
class NonlinearTeacherStudent(_TeacherStudent):
    """Regression onto a random one-hidden-layer teacher network y = V f(U x + c)."""

    params = {
        **COMMON,
        "teacher_hidden": Field("int", 20, "hidden units of the teacher", lo=1),
        "teacher_nonlinearity": Field("str", "tanh", "teacher's hidden non-linearity",
                                      choices=tuple(NONLINEARITIES)),
        "teacher_gain": Field("float", 2.0, "s.d. of U × sqrt(n_in): how non-linear the teacher is",
                              lo=0, lo_open=True),
    }

    def __init__(self, teacher_hidden=20, teacher_nonlinearity="tanh", teacher_gain=2.0, **common):
        super().__init__(**common)
        self.teacher_hidden, self.teacher_nonlinearity = teacher_hidden, teacher_nonlinearity
        self.teacher_gain = teacher_gain

    def teacher(self, rng):
        f = NONLINEARITIES[self.teacher_nonlinearity][0]
        gain = self.teacher_gain / np.sqrt(self.n_in)
        self.U = gain * rng.standard_normal((self.teacher_hidden, self.n_in))
        self.c = 0.1 * rng.standard_normal(self.teacher_hidden)
        self.V = rng.standard_normal((self.n_out, self.teacher_hidden)) / np.sqrt(self.teacher_hidden)
        return lambda x: f(x @ self.U.T + self.c) @ self.V.T
