defmodule Keyring.Native.Reply do
  @moduledoc false
  # Waits for the answer a native worker thread sends as
  # `{:keyring_reply, ref, result}` (see native/keyring_nif/src/reply.rs). The
  # native side always answers, with `{:error, :task_aborted}` if its work died.

  @spec call((reference() -> :ok | {:error, term()}), timeout()) :: term()
  def call(start, timeout) do
    ref = make_ref()

    case start.(ref) do
      :ok ->
        receive do
          {:keyring_reply, ^ref, result} -> result
        after
          timeout -> {:error, :timeout}
        end

      {:error, _} = error ->
        error
    end
  end
end
