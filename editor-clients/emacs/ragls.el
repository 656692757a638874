;;; ragls.el --- Local retrieval-augmented code assistant over LSP (eglot, lsp-mode)  -*- lexical-binding: t; -*-

;; Author: ragls contributors
;; Version: 0.1.0
;; Package-Requires: ((emacs "28.1") (eglot "1.9"))
;; Keywords: tools, languages, convenience
;; SPDX-License-Identifier: MIT

;;; Commentary:

;; ragls is a private, offline-by-default code assistant behind the
;; Language Server Protocol (`ragls serve').  This package connects Emacs
;; to it through eglot (and through lsp-mode, as an add-on server, when
;; lsp-mode is loaded):
;;
;; - `ragls-major-modes' buffers get ragls from `M-x eglot' (or add
;;   `ragls-ensure' to their hooks); `ragls-start' starts it in any buffer.
;; - Inline completion: ghost text after point, asked for after
;;   `ragls-inline-idle-delay' seconds of typing or with
;;   `ragls-inline-complete'; TAB accepts (`ragls-inline-accept'), C-g
;;   dismisses (`ragls-inline-dismiss').
;; - `ragls-ask': a chat buffer that streams the answer, with citations
;;   that open the cited lines.
;; - `ragls-recipe': run a recipe (explain, docstring, unit tests, review,
;;   your own) on the region or the definition at point.  The same recipes
;;   are eglot code actions (`eglot-code-actions').
;; - `ragls-search' (an xref buffer) and `ragls-status' (index progress).
;;
;; Remote (TRAMP) files are skipped: ragls indexes local files only.

;;; Code:

(require 'cl-lib)
(require 'eglot)
(require 'jsonrpc)
(require 'project)
(require 'subr-x)
(require 'xref)

;;;; Settings

(defgroup ragls nil
  "Retrieval-augmented code assistant over the Language Server Protocol."
  :group 'tools
  :prefix "ragls-")

(defcustom ragls-server-command '("ragls" "serve")
  "Program and arguments that start the ragls language server on stdio."
  :type '(repeat string))

(defcustom ragls-initialization-options nil
  "Settings sent to the server as `initializationOptions'.
A plist shaped like ragls' TOML configuration, for example
  (:privacy (:mode \"local\") :server (:debounce_ms 75))
nil sends {}: the configuration files decide.  After changing it in a
running session, \\[ragls-send-settings] applies it."
  :type 'sexp)

(defvar ragls-major-modes)

(defun ragls--register-eglot ()
  "Put ragls in `eglot-server-programs' for `ragls-major-modes' (once)."
  (setq eglot-server-programs
        (cl-remove #'ragls--eglot-contact eglot-server-programs :key #'cdr))
  (when ragls-major-modes
    (push (cons ragls-major-modes #'ragls--eglot-contact) eglot-server-programs)))

(defcustom ragls-major-modes
  '(python-mode python-ts-mode js-mode js-ts-mode typescript-mode
    typescript-ts-mode tsx-ts-mode go-mode go-ts-mode rust-mode rust-ts-mode
    c-mode c-ts-mode c++-mode c++-ts-mode java-mode java-ts-mode ruby-mode
    ruby-ts-mode sh-mode bash-ts-mode)
  "Major modes whose buffers eglot serves with ragls.
eglot runs one server per buffer, so these modes get ragls instead of
another language server; remove a mode to keep its usual server and use
`ragls-start' there when you want ragls.  lsp-mode runs ragls beside
the usual server instead."
  :type '(repeat symbol)
  :set (lambda (symbol value)
         (set-default symbol value)
         (ragls--register-eglot)))

(defcustom ragls-inline-idle-delay 0.4
  "Seconds after typing stops before an inline completion is asked for.
nil: only on demand (\\[ragls-inline-complete])."
  :type '(choice (const :tag "Only on demand" nil) number))

(defcustom ragls-inline-trigger-commands
  '(self-insert-command newline newline-and-indent electric-newline-and-maybe-indent)
  "Commands after which an automatic inline completion is asked for."
  :type '(repeat symbol))

(defcustom ragls-max-buffer-size (* 2 1024 1024)
  "Buffers larger than this (in characters) get no inline completion.
`ragls-ensure' does not start ragls for such files either."
  :type 'integer)

(defcustom ragls-request-timeout 300
  "Seconds to wait for an answer from the server (models can be slow)."
  :type 'number)

(defcustom ragls-search-top-k 20
  "How many results `ragls-search' lists."
  :type 'integer)

(defface ragls-inline-face '((t :inherit shadow))
  "Face of inline completion (ghost) text.")

(defface ragls-chat-question-face '((t :inherit font-lock-keyword-face :weight bold))
  "Face of questions and recipe titles in the chat buffer.")

(defface ragls-chat-note-face '((t :inherit font-lock-comment-face))
  "Face of notes, sources and status lines in the chat buffer.")

;;;; eglot: the server class and its registration

(defclass ragls-eglot-server (eglot-lsp-server) ()
  :documentation "An eglot connection to `ragls serve'.")

(defun ragls--check-startable ()
  "Signal a clear error if ragls cannot be started for this buffer."
  (let ((file (or buffer-file-name default-directory))
        (program (car ragls-server-command)))
    (when (file-remote-p file)
      (user-error "ragls: %s is a remote (TRAMP) file; ragls serves local files only, so it is not started"
                  file))
    (unless (or (file-name-absolute-p program) (executable-find program))
      (user-error "ragls: cannot start `%s': `%s' is not on `exec-path' (run `make install' in the ragls repository and put its .venv/bin on PATH, or set `ragls-server-command')"
                  (string-join ragls-server-command " ") program))
    (when (and (file-name-absolute-p program) (not (file-executable-p program)))
      (user-error "ragls: cannot start `%s': %s is not an executable file"
                  (string-join ragls-server-command " ") program))))

(defun ragls--eglot-contact (&optional _interactive)
  "The eglot contact for ragls: its class and command, or a clear error."
  (ragls--check-startable)
  (cons 'ragls-eglot-server ragls-server-command))

(ragls--register-eglot)

;;;###autoload
(defun ragls-ensure ()
  "Start ragls with eglot for this buffer, unless it should be skipped.
Meant for major mode hooks.  Remote (TRAMP) files, buffers that visit
no file and files over `ragls-max-buffer-size' are skipped with a message."
  (cond ((not buffer-file-name) nil)
        ((file-remote-p buffer-file-name)
         (message "ragls: skipped %s: remote (TRAMP) files are not served" buffer-file-name))
        ((> (buffer-size) ragls-max-buffer-size)
         (message "ragls: skipped %s: larger than `ragls-max-buffer-size'" buffer-file-name))
        (t (eglot-ensure))))

;;;###autoload
(defun ragls-start ()
  "Start ragls (through eglot) for the current buffer, whatever its mode."
  (interactive)
  (unless buffer-file-name
    (user-error "ragls: %s visits no file; open a file of the project first" (buffer-name)))
  (ragls--check-startable)
  (eglot (list major-mode)
         (or (project-current) (cons 'transient default-directory))
         'ragls-eglot-server ragls-server-command
         (string-remove-suffix "-mode" (symbol-name major-mode))))

(cl-defmethod eglot-initialization-options ((_server ragls-eglot-server))
  "`ragls-initialization-options', or {}."
  (or ragls-initialization-options (make-hash-table)))

(cl-defmethod eglot-client-capabilities ((_server ragls-eglot-server))
  "eglot's capabilities, plus inline completion, streams and showDocument."
  (let* ((caps (copy-tree (cl-call-next-method)))
         (text (plist-get caps :textDocument))
         (window (plist-get caps :window)))
    (setq caps (plist-put caps :textDocument
                          (plist-put text :inlineCompletion '(:dynamicRegistration :json-false))))
    (setq caps (plist-put caps :window (plist-put window :showDocument '(:support t))))
    (plist-put caps :experimental '(:ragls (:chatDelta t)))))

(cl-defmethod eglot-handle-notification
  ((server ragls-eglot-server) (_method (eql 'ragls/chatDelta)) &rest message)
  "Stream a chat or recipe answer into its chat buffer."
  (ragls--on-delta server message))

(cl-defmethod eglot-handle-request
  ((_server ragls-eglot-server) (_method (eql 'window/showDocument))
   &key uri external takeFocus selection)
  "Open a cited range or a recipe's new test file (eglot 1.9 lacks this)."
  (ragls--show-document uri selection external takeFocus)
  (list :success t))

(with-no-warnings                       ; obsolete in Emacs 30, still called by 28 and 29
  (cl-defmethod eglot-execute-command ((server ragls-eglot-server) command arguments)
    "Run recipes without blocking Emacs; other commands as eglot does."
    (if (equal (format "%s" command) "ragls.runRecipe")
        (ragls--run-recipe server (aref arguments 0))
      (cl-call-next-method))))

(cl-defmethod eglot-execute ((server ragls-eglot-server) action)
  "Run recipes without blocking Emacs (eglot 1.16+ calls this for code actions)."
  (if (equal (plist-get action :command) "ragls.runRecipe")
      (ragls--run-recipe server (aref (plist-get action :arguments) 0))
    (cl-call-next-method)))

(cl-defmethod initialize-instance :after ((server ragls-eglot-server) &optional _args)
  "Watch the server process, to explain a failed start or a crash."
  (let ((process (jsonrpc--process server)))
    (when (processp process)
      (add-function :before (process-sentinel process)
                    (lambda (proc _change) (ragls--on-exit server proc))))))

(defun ragls--on-exit (server process)
  "Say why SERVER's PROCESS ended, unless it was asked to."
  (when (and (memq (process-status process) '(exit signal))
             (not (eglot--shutdown-requested server)))
    (let ((command (string-join (process-command process) " "))
          (how (format "%s %d" (process-status process) (process-exit-status process))))
      (ragls--forget-streams server "the server exited")
      (if (slot-boundp server 'capabilities)
          (message "ragls: `%s' exited (%s); eglot restarts it" command how)
        ;; The stderr pipe may still hold the last words: read them first.
        (run-with-timer 0.5 nil #'ragls--warn-failed-start command how (jsonrpc-stderr-buffer server))))))

(defun ragls--warn-failed-start (command how stderr)
  "Warn that COMMAND ended (HOW) before it started, quoting STDERR."
  (display-warning
   'ragls
   (format "`%s' exited (%s) before it started%s\nSee buffer %s; check `ragls-server-command'."
           command how (ragls--last-lines stderr 5) (buffer-name stderr))
   :error))

(defun ragls--last-lines (buffer count)
  "The last COUNT non-empty lines of BUFFER, indented, or \"\"."
  (let ((lines (and (buffer-live-p buffer)
                    (split-string (with-current-buffer buffer (buffer-string)) "\n" t "[ \t]+"))))
    (if lines
        (concat ":\n  " (string-join (last lines count) "\n  "))
      "")))

;;;; Connections: eglot's server or lsp-mode's workspace

(defvar ragls--root nil
  "In chat buffers: the project root, to find its server again.")
(make-variable-buffer-local 'ragls--root)

(declare-function lsp-workspaces "lsp-mode")
(declare-function lsp-find-workspace "lsp-mode")
(declare-function lsp--workspace-server-id "lsp-mode")
(declare-function lsp-request-async "lsp-mode")
(declare-function lsp-request "lsp-mode")
(declare-function lsp-notify "lsp-mode")
(declare-function lsp--text-document-position-params "lsp-mode")
(declare-function lsp--region-to-range "lsp-mode")
(declare-function lsp--line-character-to-point "lsp-mode")
(declare-function lsp--workspace-proc "lsp-mode")
(declare-function lsp--workspace-root "lsp-mode")
(defvar lsp--cur-workspace)

(defun ragls--eglot-server ()
  "The ragls eglot server of this buffer or of its project."
  (let ((current (eglot-current-server)))
    (if (cl-typep current 'ragls-eglot-server)
        current
      (when-let ((project (project-current nil (or ragls--root default-directory))))
        (cl-find-if (lambda (s) (and (cl-typep s 'ragls-eglot-server) (jsonrpc-running-p s)))
                    (gethash project eglot--servers-by-project))))))

(defun ragls--lsp-workspace ()
  "The ragls lsp-mode workspace of this buffer or of its project."
  (when (featurep 'lsp-mode)
    (or (cl-find 'ragls (lsp-workspaces) :key #'lsp--workspace-server-id)
        (lsp-find-workspace 'ragls (expand-file-name (or ragls--root default-directory))))))

(defun ragls--connection ()
  "The ragls connection serving this buffer, or a clear error."
  (when (and buffer-file-name (file-remote-p buffer-file-name))
    (user-error "ragls: %s is a remote (TRAMP) file; ragls serves local files only" buffer-file-name))
  (or (ragls--eglot-server)
      (ragls--lsp-workspace)
      (user-error "ragls: no ragls server for %s; open a file of the project and run M-x eglot (or M-x ragls-start)"
                  (or ragls--root (abbreviate-file-name default-directory)))))

(defun ragls--alive-p (conn)
  "Whether CONN's server process still runs."
  (if (ragls--eglot-p conn)
      (jsonrpc-running-p conn)
    (process-live-p (lsp--workspace-proc conn))))

(defun ragls--eglot-p (conn)
  "Whether CONN is an eglot server (else an lsp-mode workspace)."
  (cl-typep conn 'ragls-eglot-server))

(defun ragls--plist (value)
  "VALUE with lsp-mode's hash tables turned into plists (eglot's shape)."
  (cond ((hash-table-p value)
         (let (plist)
           (maphash (lambda (k v) (setq plist (nconc plist (list (intern (concat ":" k)) (ragls--plist v)))))
                    value)
           plist))
        ((vectorp value) (vconcat (mapcar #'ragls--plist value)))
        (t value)))

(defun ragls--request (conn method params on-result &optional on-error)
  "Send METHOD with PARAMS to CONN; call ON-RESULT (or ON-ERROR) with the answer.
Returns the request's id when it is known (for $/cancelRequest)."
  (let ((on-error (or on-error
                      (lambda (error)
                        (message "ragls: %s failed: %s" method (plist-get error :message))))))
    (if (ragls--eglot-p conn)
        (progn
          (jsonrpc-async-request conn method params
                                 :success-fn on-result
                                 :error-fn on-error
                                 :timeout ragls-request-timeout
                                 :timeout-fn (lambda () (funcall on-error '(:message "timed out"))))
          (jsonrpc--next-request-id conn))
      (let ((lsp--cur-workspace conn))
        (lsp-request-async (substring (symbol-name method) 1) params
                           (lambda (result) (funcall on-result (ragls--plist result)))
                           :error-handler (lambda (error) (funcall on-error (ragls--plist error)))
                           :mode 'detached)
        nil))))

(defun ragls--request-sync (conn method params)
  "Send METHOD with PARAMS to CONN and wait for the answer."
  (if (ragls--eglot-p conn)
      (jsonrpc-request conn method params :timeout ragls-request-timeout)
    (let ((lsp--cur-workspace conn))
      (ragls--plist (lsp-request (substring (symbol-name method) 1) params)))))

(defun ragls--notify (conn method params)
  "Send the notification METHOD with PARAMS to CONN."
  (if (ragls--eglot-p conn)
      (jsonrpc-notify conn method params)
    (let ((lsp--cur-workspace conn))
      (lsp-notify (substring (symbol-name method) 1) params))))

(defun ragls--uri (conn)
  "The current buffer's document URI for CONN."
  (plist-get (plist-get (ragls--position-params conn) :textDocument) :uri))

(defun ragls--position-params (conn)
  "TextDocumentPositionParams of point, with CONN's column encoding."
  (if (ragls--eglot-p conn)
      (progn (eglot--signal-textDocument/didChange) ; the server must see what we see
             (eglot--TextDocumentPositionParams))
    (ragls--plist (lsp--text-document-position-params))))

(defun ragls--lsp-range (conn beg end)
  "The LSP range of BEG..END, with CONN's column encoding."
  (if (ragls--eglot-p conn)
      (list :start (eglot--pos-to-lsp-position beg) :end (eglot--pos-to-lsp-position end))
    (ragls--plist (lsp--region-to-range beg end))))

(defun ragls--point (conn position)
  "The buffer position of the LSP POSITION (a plist), with CONN's encoding."
  (if (ragls--eglot-p conn)
      (eglot--lsp-position-to-point position)
    (lsp--line-character-to-point (plist-get position :line) (plist-get position :character))))

(defun ragls--uri-to-path (uri)
  "The local file name of URI."
  (funcall (if (fboundp 'eglot-uri-to-path) 'eglot-uri-to-path 'eglot--uri-to-path) uri))

;;;; Inline completion

(defvar-local ragls--inline nil
  "The completion on show: (OVERLAY TEXT START END TICK).
OVERLAY sits at point and shows the ghost text; accepting replaces
START..END (markers) with TEXT; TICK is the buffer's text tick then.
Every guard here compares `buffer-chars-modified-tick', never
`buffer-modified-tick': fontification (font-lock, tree-sitter, other
packages' text properties) moves the latter between keystrokes in an
interactive Emacs without changing a character.")

(defvar-local ragls--inline-showing nil
  "Non-nil while a completion is shown: `ragls-inline-completion-map' is active.")

(defvar-local ragls--inline-timer nil "The pending automatic trigger.")
(defvar-local ragls--inline-ticket 0 "Counts requests; a late answer to an older one is dropped.")
(defvar-local ragls--inline-pending nil "(CONN . ID) of the request in flight, to cancel it.")

(defvar ragls-inline-completion-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "TAB") #'ragls-inline-accept)
    (define-key map (kbd "<tab>") #'ragls-inline-accept)
    (define-key map (kbd "C-g") #'ragls-inline-dismiss)
    map)
  "Keys active while an inline completion is shown.")

(add-to-list 'minor-mode-map-alist (cons 'ragls--inline-showing ragls-inline-completion-map))

;;;###autoload
(define-minor-mode ragls-inline-mode
  "Inline completions from ragls, shown as ghost text after point.
On in buffers that ragls serves.  Typing asks for one after
`ragls-inline-idle-delay' seconds; \\[ragls-inline-complete] asks now.
\\<ragls-inline-completion-map>\\[ragls-inline-accept] accepts it, \\[ragls-inline-dismiss] dismisses it."
  :lighter nil
  (if ragls-inline-mode
      (add-hook 'post-command-hook #'ragls--inline-post-command nil t)
    (remove-hook 'post-command-hook #'ragls--inline-post-command t)
    (ragls-inline-dismiss)))

(defun ragls--inline-post-command ()
  "Drop a completion the user moved away from; schedule one after typing."
  (when (and ragls--inline
             (not (eq this-command 'ragls-inline-complete))
             (or (/= (point) (overlay-start (car ragls--inline)))
                 (/= (buffer-chars-modified-tick) (nth 4 ragls--inline))))
    (ragls--inline-clear))
  (when (and ragls-inline-idle-delay (memq this-command ragls-inline-trigger-commands))
    (ragls--inline-schedule)))

(defun ragls--inline-schedule ()
  "Ask for a completion once typing pauses for `ragls-inline-idle-delay'."
  (when ragls--inline-timer (cancel-timer ragls--inline-timer))
  (setq ragls--inline-timer
        (run-with-timer ragls-inline-idle-delay nil #'ragls--inline-fire
                        (current-buffer) (point) (buffer-chars-modified-tick))))

(defun ragls--inline-fire (buffer pos tick)
  "The automatic trigger: ask if BUFFER is still at POS with TICK."
  (when (buffer-live-p buffer)
    (with-current-buffer buffer
      (setq ragls--inline-timer nil)
      (when (and (= (point) pos) (= (buffer-chars-modified-tick) tick)
                 (<= (buffer-size) ragls-max-buffer-size))
        (ignore-errors (ragls--inline-request 2))))))

;;;###autoload
(defun ragls-inline-complete ()
  "Ask ragls for an inline completion at point now."
  (interactive)
  (when (> (buffer-size) ragls-max-buffer-size)
    (user-error "ragls: no inline completion in buffers over `ragls-max-buffer-size' (%d)"
                ragls-max-buffer-size))
  (unless buffer-file-name
    (user-error "ragls: inline completion needs a buffer that visits a file"))
  (ragls--inline-request 1))

(defun ragls--inline-request (kind)
  "Send textDocument/inlineCompletion with trigger KIND (1 invoked, 2 automatic)."
  ;; First: cancelling the request in flight moves the ticket, which this one must not miss.
  (ragls--inline-cancel-pending)
  (let* ((conn (ragls--connection))
         (params (append (ragls--position-params conn) (list :context (list :triggerKind kind))))
         (ticket (cl-incf ragls--inline-ticket))
         (buffer (current-buffer))
         (pos (point))
         (tick (buffer-chars-modified-tick)))
    (let ((id (ragls--request
               conn :textDocument/inlineCompletion params
               (lambda (result)
                 (when (buffer-live-p buffer)
                   (with-current-buffer buffer
                     (when (and (= ticket ragls--inline-ticket) (= (point) pos)
                                (= (buffer-chars-modified-tick) tick))
                       (setq ragls--inline-pending nil)
                       (ragls--inline-show conn (ragls--inline-first result) tick)))))
               (lambda (error)
                 (when (and (= kind 1) (/= (or (plist-get error :code) 0) -32800))
                   (message "ragls: no completion: %s" (plist-get error :message)))))))
      (setq ragls--inline-pending (and id (cons conn id))))))

(defun ragls--inline-first (result)
  "The first item of an InlineCompletionList or item array RESULT."
  (let ((items (if (vectorp result) result (plist-get result :items))))
    (and (> (length items) 0) (aref items 0))))

(defun ragls--inline-show (conn item tick)
  "Show ITEM as ghost text at point (the buffer is at TICK)."
  (ragls--inline-clear)
  (let* ((insert (plist-get item :insertText))
         (text (if (stringp insert) insert (plist-get insert :value)))
         (range (plist-get item :range))
         (start (if range (ragls--point conn (plist-get range :start)) (point)))
         (end (if range (ragls--point conn (plist-get range :end)) (point)))
         (typed (buffer-substring-no-properties start (point)))
         (ghost (and (stringp text)
                     (if (string-prefix-p typed text) (substring text (length typed)) text))))
    (unless (or (null ghost) (string-empty-p ghost))
      (let ((overlay (make-overlay (point) (point) nil t nil)))
        (overlay-put overlay 'after-string
                     (concat (propertize (substring ghost 0 1) 'face 'ragls-inline-face 'cursor t)
                             (propertize (substring ghost 1) 'face 'ragls-inline-face)))
        (overlay-put overlay 'priority 1000)
        (setq ragls--inline (list overlay text (copy-marker start) (copy-marker end) tick)
              ragls--inline-showing t)))))

(defun ragls-inline-accept ()
  "Insert the inline completion on show."
  (interactive)
  (unless ragls--inline (user-error "ragls: no inline completion to accept"))
  (pcase-let ((`(,_overlay ,text ,start ,end ,_tick) ragls--inline))
    (ragls--inline-clear)
    (goto-char start)
    (delete-region start end)
    (insert text)))

(defun ragls-inline-dismiss ()
  "Hide the inline completion and stop one being generated."
  (interactive)
  (when ragls--inline-timer (cancel-timer ragls--inline-timer))
  (setq ragls--inline-timer nil)
  (ragls--inline-cancel-pending)
  (ragls--inline-clear))

(defun ragls--inline-clear ()
  "Remove the ghost text."
  (when ragls--inline (delete-overlay (car ragls--inline)))
  (setq ragls--inline nil ragls--inline-showing nil))

(defun ragls--inline-cancel-pending ()
  "Tell the server to stop the completion in flight, if any."
  (when ragls--inline-pending
    (pcase-let ((`(,conn . ,id) ragls--inline-pending))
      (setq ragls--inline-pending nil)
      (cl-incf ragls--inline-ticket)
      (when (ragls--alive-p conn)
        (ragls--notify conn :$/cancelRequest (list :id id))))))

(defun ragls--managed-setup ()
  "Turn `ragls-inline-mode' on in buffers a ragls server manages."
  (ragls-inline-mode (if (and (eglot-managed-p) (cl-typep (eglot-current-server) 'ragls-eglot-server))
                         1 -1)))

(add-hook 'eglot-managed-mode-hook #'ragls--managed-setup)

;;;; Chat: streamed answers in a chat buffer

(cl-defstruct (ragls--turn (:constructor ragls--turn-create))
  "One streamed answer: where its text goes."
  conn buffer marker)

(defvar ragls--turns (make-hash-table :test #'equal)
  "\"chatId#turn\" -> `ragls--turn' being streamed.")

(defvar ragls--early (make-hash-table :test #'equal)
  "\"chatId#turn\" -> messages that arrived before the request's answer.")

(defvar-local ragls--chat-id nil "The conversation this chat buffer continues.")
(defvar-local ragls--chat-conn nil "The connection `ragls--chat-id' belongs to.")

(defvar ragls-chat-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "a") #'ragls-ask)
    (define-key map (kbd "k") #'ragls-cancel)
    (define-key map (kbd "TAB") #'forward-button)
    (define-key map (kbd "<backtab>") #'backward-button)
    map)
  "Keys of `ragls-chat-mode'.")

(define-derived-mode ragls-chat-mode special-mode "ragls-chat"
  "Answers from ragls, streamed.
\\<ragls-chat-mode-map>\\[ragls-ask] asks a follow-up, \\[ragls-cancel] stops the answer,
RET on a citation opens the cited lines."
  (setq-local truncate-lines nil)
  (visual-line-mode 1))

(defun ragls--chat-buffer (conn)
  "The chat buffer of CONN's project."
  (let* ((root (ragls--root-of conn))
         (buffer (get-buffer-create
                  (format "*ragls chat: %s*" (file-name-nondirectory (directory-file-name root))))))
    (with-current-buffer buffer
      (unless (derived-mode-p 'ragls-chat-mode)
        (ragls-chat-mode))
      (setq default-directory root ragls--root root))
    buffer))

(defun ragls--root-of (conn)
  "The project root CONN serves."
  (file-name-as-directory
   (expand-file-name
    (if (ragls--eglot-p conn)
        (project-root (eglot--project conn))
      (lsp--workspace-root conn)))))

(defun ragls--open-turn (conn heading)
  "Start a section titled HEADING in CONN's chat buffer; its text marker."
  (let ((buffer (ragls--chat-buffer conn)))
    (with-current-buffer buffer
      (let ((inhibit-read-only t))
        (save-excursion
          (goto-char (point-max))
          (unless (bobp) (insert "\n"))
          (insert (propertize heading 'face 'ragls-chat-question-face) "\n")
          (let ((marker (point-marker)))
            (set-marker-insertion-type marker t)
            (insert (propertize "…" 'face 'ragls-chat-note-face 'ragls-pending t))
            marker))))))

(defun ragls--register-turn (conn marker chat-id turn)
  "Stream CHAT-ID's TURN at MARKER, replaying what arrived early."
  (let ((key (format "%s#%s" chat-id turn)))
    (puthash key (ragls--turn-create :conn conn :buffer (marker-buffer marker) :marker marker)
             ragls--turns)
    (dolist (message (nreverse (gethash key ragls--early)))
      (ragls--on-delta conn message))
    (remhash key ragls--early)))

(defun ragls--on-delta (_conn message)
  "Show a ragls/chatDelta MESSAGE (chat ids are unique across servers)."
  (let* ((key (format "%s#%s" (plist-get message :chatId) (plist-get message :turn)))
         (turn (gethash key ragls--turns)))
    (cond ((null turn) (push message (gethash key ragls--early)))
          ((not (buffer-live-p (ragls--turn-buffer turn))) (remhash key ragls--turns))
          ((plist-get message :done)
           (remhash key ragls--turns)
           (ragls--insert-final turn message))
          (t (ragls--insert turn (plist-get message :delta))))))

(defun ragls--insert (turn text &optional final)
  "Insert TEXT where TURN streams; FINAL: after it, ending the section."
  (with-current-buffer (ragls--turn-buffer turn)
    (let* ((inhibit-read-only t)
           (marker (ragls--turn-marker turn))
           (followers (cl-remove-if-not (lambda (w) (= (window-point w) marker))
                                        (get-buffer-window-list nil nil t))))
      (save-excursion
        (goto-char marker)
        (when (get-text-property (1- (point)) 'ragls-pending) ; the "…" placeholder
          (delete-region (1- (point)) (point)))
        (insert text)
        (when final (set-marker marker nil)))
      (dolist (window followers)
        (set-window-point window (if final (point-max) marker))))))

(defun ragls--insert-final (turn message)
  "Finish TURN with the final MESSAGE: citations, sources, notes, errors."
  (let ((parts nil)
        (citations (append (plist-get message :citations) nil))
        (sources (append (plist-get message :sources) nil))
        (results (append (plist-get message :results) nil))
        (error (plist-get message :error)))
    (when (equal (plist-get message :route) "search")
      (push (ragls--links "Results" results t) parts))
    (when citations (push (ragls--links "Citations" citations) parts))
    (when (and sources (not citations) (not (equal (plist-get message :route) "search")))
      (push (ragls--links "Sources (nothing was cited)" sources) parts))
    (when (plist-get message :targetUri)
      (push (propertize (format "\nCode for %s%s\n" (plist-get message :target_path)
                                (if (eq (plist-get message :applied) t) " (added and opened)" ""))
                        'face 'ragls-chat-note-face)
            parts))
    (when (and (plist-get message :code) (equal (plist-get message :output) "edit"))
      (push (propertize (if (eq (plist-get message :applied) t)
                            "\n(applied to the buffer)\n"
                          "\n(not applied: the buffer changed, or the edit was refused)\n")
                        'face 'ragls-chat-note-face)
            parts))
    (dolist (note (append (plist-get message :notes) nil))
      (push (propertize (format "\nNote: %s\n" note) 'face 'ragls-chat-note-face) parts))
    (when (eq (plist-get message :cancelled) t)
      (push (propertize "\n(cancelled)\n" 'face 'ragls-chat-note-face) parts))
    (when error
      (push (propertize (format "\nError: %s\n" error) 'face 'error) parts))
    (when (and (not (equal (plist-get message :route) "search"))
               (string-empty-p (or (plist-get message :answer) ""))
               (not error))
      (push (propertize "\n(no answer)\n" 'face 'ragls-chat-note-face) parts))
    (ragls--insert turn (concat "\n" (apply #'concat (nreverse parts))) t)))

(defun ragls--links (title locations &optional scores)
  "TITLE, then a clickable line per LOCATION (with its score if SCORES)."
  (with-temp-buffer
    (insert "\n" (propertize (concat title ":") 'face 'ragls-chat-note-face) "\n")
    (dolist (loc locations)
      (insert "  ")
      (insert-text-button (format "%s:%s-%s" (plist-get loc :path) (plist-get loc :startLine)
                                  (plist-get loc :endLine))
                          'action #'ragls--follow 'ragls-location loc 'follow-link t
                          'help-echo "Open the cited lines")
      (when scores
        (insert (format "  %s  %.3f" (or (plist-get loc :symbol) "") (or (plist-get loc :score) 0))))
      (insert "\n"))
    (buffer-string)))

(defun ragls--follow (button)
  "Open the location of a citation BUTTON."
  (let ((loc (button-get button 'ragls-location)))
    (ragls--show-document (plist-get loc :uri) (plist-get loc :range) nil t)))

(defun ragls--show-document (uri range &optional external focus)
  "Show URI with RANGE selected; EXTERNAL opens it in a browser; FOCUS selects it."
  (if (eq external t)
      (browse-url uri)
    (let ((buffer (find-file-noselect (ragls--uri-to-path uri))))
      (if (eq focus :json-false)
          (display-buffer buffer)
        (pop-to-buffer buffer))
      (with-current-buffer buffer
        (when range
          (let* ((conn (ignore-errors (ragls--connection)))
                 (point-of (lambda (pos)
                             (if conn
                                 (ragls--point conn pos)
                               (save-excursion (goto-char (point-min))
                                               (forward-line (plist-get pos :line)) (point)))))
                 (start (funcall point-of (plist-get range :start)))
                 (end (funcall point-of (plist-get range :end))))
            (goto-char start)
            (when-let ((window (get-buffer-window buffer))) (set-window-point window start))
            (unless (= start end) (push-mark end t t))))))))

(defun ragls--forget-streams (conn why)
  "End the sections CONN was streaming, saying WHY."
  (let (dead)
    (maphash (lambda (key turn)
               (when (eq (ragls--turn-conn turn) conn) (push (cons key turn) dead)))
             ragls--turns)
    (dolist (entry dead)
      (remhash (car entry) ragls--turns)
      (when (buffer-live-p (ragls--turn-buffer (cdr entry)))
        (ragls--insert (cdr entry) (propertize (format "\n(%s; the answer is lost)\n" why) 'face 'error) t)))))

;;;###autoload
(defun ragls-ask (question &optional beg end)
  "Ask ragls QUESTION about the repository; the answer streams into a chat buffer.
With an active region, the question is about the region (BEG END).  In
the chat buffer, the question follows up on the conversation."
  (interactive
   (list (read-string (if (use-region-p) "Ask ragls about the region: " "Ask ragls: "))
         (and (use-region-p) (region-beginning))
         (and (use-region-p) (region-end))))
  (when (string-blank-p question) (user-error "ragls: the question is empty"))
  (let* ((conn (ragls--connection))
         (in-chat (derived-mode-p 'ragls-chat-mode))
         (follow-up (and in-chat ragls--chat-id (eq ragls--chat-conn conn) (ragls--alive-p conn)
                         ragls--chat-id))
         (params (list :question question)))
    (when (and in-chat ragls--chat-id (not follow-up))
      (ragls--note conn "(the server restarted: a new conversation starts)"))
    (when follow-up (setq params (plist-put params :chatId follow-up)))
    (when buffer-file-name
      (setq params (plist-put params :uri (ragls--uri conn)))
      (when beg (setq params (plist-put params :range (ragls--lsp-range conn beg end)))))
    (let ((marker (ragls--open-turn conn (concat "Q: " question))))
      (display-buffer (marker-buffer marker))
      (ragls--request conn :ragls/chat params
                      (lambda (started)
                        (with-current-buffer (marker-buffer marker)
                          (setq ragls--chat-id (plist-get started :chatId) ragls--chat-conn conn))
                        (ragls--register-turn conn marker (plist-get started :chatId)
                                              (plist-get started :turn)))
                      (lambda (error) (ragls--fail marker error)))
      (marker-buffer marker))))

(defun ragls--fail (marker error)
  "Show a failed request's ERROR at MARKER, ending its section."
  (ragls--insert (ragls--turn-create :buffer (marker-buffer marker) :marker marker)
                 (propertize (format "\nError: %s\n" (plist-get error :message)) 'face 'error) t))

(defun ragls--note (conn text)
  "Add TEXT as a note at the end of CONN's chat buffer."
  (with-current-buffer (ragls--chat-buffer conn)
    (let ((inhibit-read-only t))
      (save-excursion (goto-char (point-max))
                      (insert "\n" (propertize text 'face 'ragls-chat-note-face) "\n")))))

(defun ragls-cancel ()
  "Stop the answer being streamed in this chat."
  (interactive)
  (unless ragls--chat-id (user-error "ragls: no conversation here"))
  (ragls--request (ragls--connection) :ragls/cancelChat (list :chatId ragls--chat-id)
                  (lambda (result)
                    (unless (eq (plist-get result :cancelled) t)
                      (message "ragls: nothing to cancel")))))

;;;; Recipes

(defun ragls--run-recipe (conn argument)
  "Run the recipe ARGUMENT ({recipe, uri, range?, question?}) on CONN, streaming."
  (let ((marker (ragls--open-turn conn (format "Recipe %s on %s" (plist-get argument :recipe)
                                               (file-name-nondirectory
                                                (ragls--uri-to-path (plist-get argument :uri)))))))
    (display-buffer (marker-buffer marker))
    (ragls--request conn :ragls/runRecipe argument
                    (lambda (started)
                      (ragls--register-turn conn marker (plist-get started :chatId) 1))
                    (lambda (error) (ragls--fail marker error)))
    (marker-buffer marker)))

(defun ragls--recipe-names (conn)
  "Recipes that work on code, as (NAME . TITLE)."
  (let ((listed (ragls--request-sync conn :ragls/recipes (list :uri (ragls--uri conn)))))
    (cl-loop for recipe across (plist-get listed :recipes)
             when (equal (plist-get recipe :runner) "prompt")
             collect (cons (plist-get recipe :name) (plist-get recipe :title)))))

;;;###autoload
(defun ragls-recipe (recipe &optional beg end question)
  "Run RECIPE on the region BEG..END, or on the definition at point.
Its answer streams into the chat buffer; code recipes edit the buffer
\(docstring) or add to the test file they belong in (unit tests).  With
a prefix argument, also ask for a QUESTION to pass to the recipe."
  (interactive
   (let* ((conn (ragls--connection))
          (recipes (ragls--recipe-names conn))
          (name (completing-read
                 "ragls recipe: "
                 (lambda (string pred action)
                   (if (eq action 'metadata)
                       `(metadata (annotation-function
                                   . ,(lambda (n) (concat "  " (cdr (assoc n recipes))))))
                     (complete-with-action action recipes string pred)))
                 nil t)))
     (list name
           (and (use-region-p) (region-beginning))
           (and (use-region-p) (region-end))
           (and current-prefix-arg (read-string "Question for the recipe: ")))))
  (unless buffer-file-name (user-error "ragls: recipes work on a buffer that visits a file"))
  (let* ((conn (ragls--connection))
         (range (ragls--lsp-range conn (or beg (point)) (or end beg (point))))
         (argument (list :recipe recipe :uri (ragls--uri conn) :range range)))
    (when question (setq argument (plist-put argument :question question)))
    (ragls--run-recipe conn argument)))

;;;; Search and status

;;;###autoload
(defun ragls-search (query)
  "Search the repository for QUERY; the results are listed in an xref buffer."
  (interactive (list (read-string "ragls search: " (thing-at-point 'symbol t))))
  (let ((conn (ragls--connection))
        (root default-directory))
    (ragls--request conn :ragls/search (list :query query :topK ragls-search-top-k)
                    (lambda (answer)
                      (let ((xrefs (ragls--xrefs (plist-get answer :results))))
                        (if (null xrefs)
                            (message "ragls: nothing found for %S" query)
                          (let ((default-directory root))
                            (xref-show-xrefs (lambda () xrefs) nil))))))))

(defun ragls--xrefs (results)
  "xref items for search RESULTS."
  (cl-loop for hit across results
           collect (xref-make (format "%-40s %.3f  lines %s-%s"
                                      (or (plist-get hit :symbol) (plist-get hit :path))
                                      (or (plist-get hit :score) 0)
                                      (plist-get hit :startLine) (plist-get hit :endLine))
                              (xref-make-file-location (ragls--uri-to-path (plist-get hit :uri))
                                                       (plist-get hit :startLine) 0))))

;;;###autoload
(defun ragls-status ()
  "Show the state of the index of each workspace folder."
  (interactive)
  (let* ((conn (ragls--connection))
         (status (ragls--request-sync conn :ragls/indexStatus (make-hash-table)))
         (text (mapconcat #'ragls--status-line (plist-get status :workspaces) "\n")))
    (message "%s" (if (string-empty-p text) "ragls: no workspace folder is open" text))))

(defun ragls--status-line (ws)
  "One line describing the workspace status WS."
  (let ((progress (plist-get ws :progress)))
    (format "ragls %s: %s, %s files, %s chunks, %s embedded%s%s"
            (abbreviate-file-name (plist-get ws :root)) (plist-get ws :state)
            (plist-get ws :files) (plist-get ws :chunks) (plist-get ws :embedded)
            (if (and progress (not (eq progress :null)))
                (format " (%s %s/%s, %s%%)" (plist-get progress :what) (plist-get progress :done)
                        (plist-get progress :total) (plist-get progress :percentage))
              "")
            (if (stringp (plist-get ws :error)) (format " error: %s" (plist-get ws :error)) ""))))

;;;###autoload
(defun ragls-models ()
  "Pick a model already on this machine and the role it serves.
The list is the server's `ragls models scan' (GGUF files in the usual places and
`models.search_paths', models served on loopback); the choice is written to the
user's ragls config and used at once."
  (interactive)
  (let* ((conn (ragls--connection))
         (found (append (plist-get (ragls--request-sync conn :ragls/models (make-hash-table)) :models) nil))
         (choices (mapcar (lambda (m) (cons (ragls--model-line m) m)) found)))
    (unless choices
      (user-error "ragls: no models found (models.search_paths names folders of GGUF files)"))
    (let* ((model (cdr (assoc (completing-read "ragls model: " choices nil t) choices)))
           (role (completing-read (format "use %s for: " (plist-get model :name))
                                  '("chat" "completion" "embedding") nil t))
           (path (plist-get model :path))
           (used (ragls--request-sync conn :ragls/useModel
                                      (list :name (if (stringp path) path (plist-get model :name))
                                            :role role :from (plist-get model :source)))))
      (message "ragls: models.%s = %s (written to %s)" role (plist-get model :name) (plist-get used :config)))))

(defun ragls--model-line (model)
  "One line describing MODEL from ragls/models.
Facts the scan did not learn (JSON null) are left out."
  (let ((fim (plist-get model :fim)))
    (string-join (seq-filter #'stringp
                             (list (plist-get model :name) (format "[%s]" (plist-get model :source))
                                   (plist-get model :family) (plist-get model :size)
                                   (plist-get model :quantisation) (and (stringp fim) (concat "FIM " fim))))
                 " ")))

;;;###autoload
(defun ragls-arena (question)
  "Two models answer QUESTION blind, side by side as A and B; then vote.
The models are the server's `arena.models'.  Their names are shown once the
vote (A, B, tie, both bad) is recorded in the server's votes file."
  (interactive "sArena question: ")
  (let* ((conn (ragls--connection))
         (match (progn (message "ragls: arena: two models are answering...")
                       (ragls--request-sync conn :ragls/arena (list :question question))))
         (windows (ragls--arena-show match))
         (choices '(("A is better" . "a") ("B is better" . "b") ("Tie" . "tie") ("Both are bad" . "both_bad")))
         (vote (cdr (assoc (completing-read "ragls arena: which answer is better? " choices nil t) choices)))
         (result (ragls--request-sync conn :ragls/arenaVote (list :id (plist-get match :id) :vote vote))))
    (with-current-buffer (window-buffer (car windows))
      (setq header-line-format (concat "A: " (plist-get result :a))))
    (with-current-buffer (window-buffer (cdr windows))
      (setq header-line-format (concat "B: " (plist-get result :b))))
    (message "ragls: arena: A was %s, B was %s (vote recorded in %s)"
             (plist-get result :a) (plist-get result :b) (plist-get result :votesFile))))

(defun ragls--arena-show (match)
  "Show MATCH's answers side by side, labelled A and B only.
Returns (A's window . B's window)."
  (let ((left (selected-window)))
    (delete-other-windows left)
    (let ((right (split-window-right)))
      (dolist (side `((,left "A" ,(plist-get match :a)) (,right "B" ,(plist-get match :b))))
        (let ((buffer (get-buffer-create (format "*ragls arena %s*" (nth 1 side)))))
          (with-current-buffer buffer
            (let ((inhibit-read-only t))
              (erase-buffer)
              (insert (if (string-empty-p (nth 2 side)) "(no answer)" (nth 2 side))))
            (special-mode)
            (visual-line-mode 1)
            (setq header-line-format (nth 1 side)))
          (set-window-buffer (car side) buffer)))
      (cons left right))))

;;;###autoload
(defun ragls-send-settings ()
  "Send `ragls-initialization-options' to the running server (applied live)."
  (interactive)
  (ragls--notify (ragls--connection) :workspace/didChangeConfiguration
                 (list :settings (or ragls-initialization-options (make-hash-table)))))

;;;; lsp-mode

(declare-function lsp-register-client "lsp-mode")
(declare-function make-lsp-client "lsp-mode")
(declare-function lsp-stdio-connection "lsp-mode")
(declare-function lsp-activate-on "lsp-mode")

(defun ragls--register-lsp-mode ()
  "Register ragls with lsp-mode, as an add-on beside the usual server."
  (lsp-register-client
   (make-lsp-client
    :new-connection (lsp-stdio-connection (lambda () ragls-server-command))
    :activation-fn (lambda (file mode)
                     (and (memq mode ragls-major-modes) (not (file-remote-p file))))
    :server-id 'ragls
    :add-on? t
    :after-open-fn (lambda () (ragls-inline-mode 1))
    :priority -1
    :initialization-options (lambda () (or ragls-initialization-options (make-hash-table)))
    :custom-capabilities '((experimental . ((ragls . ((chatDelta . t)))))
                           (textDocument . ((inlineCompletion . ((dynamicRegistration . :json-false)))))
                           (window . ((showDocument . ((support . t))))))
    :notification-handlers
    (let ((handlers (make-hash-table :test #'equal)))
      (puthash "ragls/chatDelta"
               (lambda (workspace params) (ragls--on-delta workspace (ragls--plist params)))
               handlers)
      handlers)
    :request-handlers
    (let ((handlers (make-hash-table :test #'equal)))
      (puthash "window/showDocument"
               (lambda (_workspace params)
                 (let ((params (ragls--plist params)))
                   (ragls--show-document (plist-get params :uri) (plist-get params :selection)
                                         (plist-get params :external) (plist-get params :takeFocus))
                   (list :success t)))
               handlers)
      handlers))))

(with-eval-after-load 'lsp-mode
  (ragls--register-lsp-mode))

(provide 'ragls)
;;; ragls.el ends here
