defmodule Keyring.Test.Eventually do
  @moduledoc false
  # The one polling helper of the test suite.

  @doc """
  Polls `fun` until it returns a truthy value (which it returns) or `timeout`
  ms pass (then the test fails, naming `what`).
  """
  def eventually(fun, timeout \\ 20_000, what \\ "condition") do
    deadline = System.monotonic_time(:millisecond) + timeout
    loop(fun, deadline, what)
  end

  defp loop(fun, deadline, what) do
    case fun.() do
      result when result not in [nil, false] ->
        result

      _ ->
        if System.monotonic_time(:millisecond) > deadline do
          raise ExUnit.AssertionError, message: "timed out waiting for #{what}"
        end

        Process.sleep(25)
        loop(fun, deadline, what)
    end
  end
end
